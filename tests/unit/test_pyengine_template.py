"""The pyengine CLI's Go template engine (cli/pyengine/gotemplate*.py) and docker's table layout, against
what Go's text/template and tabwriter print for the same templates."""
from __future__ import annotations

import pytest

from cli.pyengine.api import CLIError
from cli.pyengine.formatting import Template, tabulate
from cli.pyengine.gotemplate_funcs import Record

DATA = {
    "Name": "/web", "Id": "4905259f2d21", "Count": 3, "Ratio": 0.25, "Big": 1e6, "Empty": "", "Nil": None,
    "State": {"Status": "running", "Running": True, "Pid": 12, "ExitCode": 0},
    "Config": {"Cmd": ["sleep", "60"], "Labels": {"b": "2", "a": "1"}, "Env": []},
    "Nums": [1, 2, 3],
}

CASES = [
    ("{{.Name}} {{.State.Status}}", "/web running"),
    ("{{.State}}", "map[ExitCode:0 Pid:12 Running:true Status:running]"),
    ("{{.Config.Cmd}} {{.Nil}} {{.Missing}} {{.Missing.Deeper}}", "[sleep 60] <nil> <no value> <no value>"),
    ("{{json .Config.Cmd}} {{json .State.Running}} {{json .Nil}}", '["sleep","60"] true null'),
    ('{{json "<&>"}}', '"<&>"'),
    ("{{range $i, $v := .Config.Cmd}}{{$i}}={{$v}};{{end}}", "0=sleep;1=60;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}{{$v}}{{end}}", "a1b2"),
    ("{{range .Nums}}{{.}}{{else}}none{{end}}|{{range .Config.Env}}x{{else}}none{{end}}", "123|none"),
    ("{{range $v := .Nums}}{{if eq $v 2}}{{continue}}{{end}}{{$v}}{{end}}", "13"),
    ("{{range .Nums}}{{if gt . 1}}{{break}}{{end}}{{.}}{{end}}", "1"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ('{{index .Config.Labels "a"}}|{{index .Config.Labels "zz"}}|{{index .Nums 2}}|{{index .State "nope"}}',
     "1||3|<no value>"),
    ('{{join .Config.Cmd ", "}} {{split "a:b:c" ":"}} {{len .Nums}} {{len .Name}}', "sleep, 60 [a b c] 3 4"),
    ("{{lower \"ABC\"}} {{upper .State.Status}} {{title \"hello wide-world\"}}", "abc RUNNING Hello Wide-World"),
    ('[{{pad "x" 1 2}}] [{{pad "" 1 2}}] {{truncate "abcdef" 3}} {{truncate "ab" 3}}', "[ x  ] [] abc ab"),
    ('{{if eq .State.Status "running"}}up{{else if .State.Pid}}pid{{else}}down{{end}}', "up"),
    ('{{if ne .Count 3}}a{{else}}b{{end}} {{if not .Empty}}empty{{end}} {{if and .Count .Name}}both{{end}}',
     "b empty both"),
    ("{{or .Empty .Nil \"default\"}} {{and 1 0 2}} {{or 0 \"\"}}|", "default 0 |"),
    ('{{if or (eq .Count 1 2 3) (lt 1 0)}}in{{end}} {{le 2 2}} {{ge 1.5 2}} {{lt "a" "b"}}', "in true false true"),
    ('{{printf "%s|%5s|%-5s|%d|%03d|%q|%v|%t|%.2f|%x" .Name "ab" "ab" .Count 7 "q" .Nums true .Ratio 255}}',
     '/web|   ab|ab   |3|007|"q"|[1 2 3]|true|0.25|ff'),
    ('{{printf "%d %s"  1}} {{printf "%d" "x"}} {{printf "%%" 1}}', "1 %!s(MISSING) %!d(string=x) %%!(EXTRA int=1)"),
    ("{{print 1 2 \"a\" 3}} {{println .Name}}x", "1 2a3 /web\nx"),
    # docker turns \\n into a newline everywhere in the format, raw strings included.
    ("{{.Ratio}} {{.Big}} {{1e-5}} {{0x1F}} {{'a'}} {{`raw\\n`}} {{-3}} {{1_000}}", "0.25 1e+06 1e-05 31 97 raw\n -3 1000"),
    ("a  {{- .Count -}}  b {{/* note */}}c{{- /* trimmed */ -}} d", "a3b cd"),
    ("{{$x := .Count}}{{$x}}{{$x = 7}}{{$x}}{{with .State}}{{$.Name}}{{.Pid}}{{end}}", "37/web12"),
    ("{{with .Empty}}no{{else}}else{{end}} {{with $s := .State.Status}}{{$s}}{{end}}", "else running"),
    ("{{(index .Config.Cmd 0)}} {{(.State).Status}} {{.Config.Cmd | len}} {{\"x\" | printf \"<%s>\"}}",
     "sleep running 2 <x>"),
    ('{{define "t"}}[{{.}}]{{end}}{{template "t" .Name}}{{block "b" .Count}}({{.}}){{end}}', "[/web](3)"),
    ("{{slice .Name 1 3}} {{slice .Nums 1}}", "we [2 3]"),
    ('{{html "<a&b>"}} {{urlquery "a b&c"}}', "&lt;a&amp;b&gt; a+b%26c"),
    ("tab\\there", "tab\there"),
]


@pytest.mark.parametrize(("template", "expected"), CASES, ids=[c[0] for c in CASES])
def test_renders_as_go_does(template: str, expected: str) -> None:
    assert Template(template).render(DATA) == expected


PARSE_ERRORS = [
    ("{{.Name", "template: :1: unclosed action"),
    ("{{foo .Name}}", 'template: :1: function "foo" not defined'),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if .Name}}x", "template: :1: unexpected EOF"),
    ("{{.Name | 3}}", "template: :1: non executable command in pipeline stage 2"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("x\n{{\"open}}", "template: :2: unterminated quoted string"),
]


@pytest.mark.parametrize(("template", "message"), PARSE_ERRORS, ids=[c[0] for c in PARSE_ERRORS])
def test_parse_errors_are_go_s(template: str, message: str) -> None:
    with pytest.raises(CLIError) as e:
        Template(template)
    assert e.value.message == f"template parsing error: {message}"


def test_execution_errors_name_the_node_and_its_place() -> None:
    with pytest.raises(CLIError) as e:
        Template("x\n  {{.State.Nope}}", missing="error").render(DATA)
    assert e.value.message == ('template parsing error: template: :2:10: executing "" at <.State.Nope>: '
                               'map has no entry for key "Nope"')
    with pytest.raises(CLIError) as e:
        Template("{{.Nil.Field}}").render(DATA)
    assert "nil pointer evaluating interface {}.Field" in e.value.message
    with pytest.raises(CLIError) as e:
        Template("{{lower .Count}}").render(DATA)
    assert "wrong type for value; expected string; got int" in e.value.message


def _container(name: str, labels: dict[str, str]) -> Record:
    return Record("*formatter.ContainerContext", {"Names": name, "ID": "abc", "Size": lambda: "1B"},
                  {"Label": lambda key: labels.get(key, "")})


def test_records_are_docker_s_formatter_contexts() -> None:
    row = _container("web", {"com.example.app": "shop"})
    assert Template('{{.Names}} {{.Label "com.example.app"}}|{{.Label "x"}}|').render(row) == "web shop||"
    assert row.used == {"Names", "Label"}
    assert Template("{{json .}}").render(_container("<a>", {})) == '{"ID":"abc","Names":"\\u003ca\\u003e","Size":"1B"}'
    with pytest.raises(CLIError) as e:
        Template("{{.Nope}}").render(row)
    assert e.value.message.endswith("can't evaluate field Nope in type *formatter.ContainerContext")


def test_table_header_names_columns_as_docker_does() -> None:
    rows = [_container("web", {"com.example.some-app_name": "shop"}), _container("a-much-longer-name", {})]
    out = Template('table {{.ID}}\\t{{.Names}}\\t{{.Label "com.example.some-app_name"}}\\tend').lines(
        rows, {"ID": "CONTAINER ID", "Names": "NAMES"})
    assert out.splitlines() == [
        "CONTAINER ID   NAMES                some app name   end",
        "abc            web                  shop            end",
        "abc            a-much-longer-name                   end",
    ]
    # A field without a column name is headed <no value>, as in docker's header map.
    assert Template("table {{.Size}}").lines([], {}) == "<no value>\n"
    # Functions keep a header as it is, and a failure leaves what rendered before it.
    assert Template("table {{upper .Names}}\\t{{json .}}").lines([], {"Names": "NAMES"}) == "NAMES     \n"


def test_tabwriter_widths_are_per_block_of_lines() -> None:
    assert tabulate("a\tb\tc\nlonger-cell\tb\n") == "a" + " " * 13 + "b" + " " * 9 + "c\nlonger-cell   b\n"
    # A line without the column ends the block: the next block is sized on its own.
    assert tabulate("aaaaaaaaaaaaaa\tx\nsingle\nb\ty\n") == "aaaaaaaaaaaaaa   x\nsingle\nb         y\n"
    assert tabulate("no newline\tat end") == "no newline\tat end"
