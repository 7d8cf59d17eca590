"""Variable substitution as BuildKit's shell lexer does it, and the ARG/ENV scopes words see."""
from __future__ import annotations

import json

import pytest

from engine.builder.dockerfile import (
    DockerfileError, RunFile, RunProcess, StageScope, SubstitutionError, expand, expand_heredoc, expand_words,
    global_scope, parse_dockerfile, run_process,
)
from engine.builder.dockerfile.instructions import Arg, Run

ENV = {"A": "a", "E": "", "P": "80 443", "PATH": "/bin"}


@pytest.mark.parametrize("word, out", [
    ("$A", "a"), ("${A}", "a"), ("x${A}y", "xay"), ("$Ax", ""), ("$A-x", "a-x"), ("$UNSET", ""),
    ("${UNSET:-d}", "d"), ("${E:-d}", "d"), ("${A:-d}", "a"), ("${UNSET-d}", "d"), ("${E-d}", ""),
    ("${UNSET:+w}", ""), ("${E:+w}", ""), ("${A:+w}", "w"), ("${UNSET+w}", ""), ("${E+w}", "w"),
    ("${A:?m}", "a"), ("${E?m}", ""), ("${UNSET:-${A}b}", "ab"), ("${UNSET:-'q'}", "q"),
    ("\\$A", "$A"), ("'$A'", "$A"), ('"$A"', "a"), ('"\\$A"', "$A"), ('"a\\"b"', 'a"b'), ('"a\\nb"', "a\\nb"),
    ("a\\ b", "a b"), ("a\\", "a"), ("$", "$"), ("a$", "a$"), ("$1", ""), ("$@x", "x"),
    ("it's", None), ("${PATH}:/usr/bin", "/bin:/usr/bin"), ('"${P}"', "80 443"), ("'a'\"b\"c", "abc"),
])
def test_expand(word: str, out: str | None) -> None:
    if out is None:
        with pytest.raises(SubstitutionError, match="single-quote"):
            expand(word, ENV)
    else:
        assert expand(word, ENV) == out


def test_backtick_escape() -> None:
    assert expand("`$A", ENV, "`") == "$A"
    assert expand("c:\\dir\\$A", ENV, "`") == "c:\\dir\\a"


@pytest.mark.parametrize("word, message", [
    ("${UNSET:?}", "UNSET: is not allowed to be unset"),
    ("${E:?}", "E: is not allowed to be empty"),
    ("${E:?custom}", "E: custom"),
    ("${UNSET?}", "UNSET: is not allowed to be unset"),
    ("${A", "syntax error: missing '}'"),
    ("${A:-x", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:x}", "syntax error: bad substitution"),
    ("${A=x}", "unsupported modifier (=) in substitution"),
    ('"open', "unexpected end of statement while looking for matching double-quote"),
])
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(SubstitutionError) as err:
        expand(word, ENV)
    assert err.value.message == f"failed to process {json.dumps(word)}: {message}"


@pytest.mark.parametrize("text, words", [
    ("$P", ["80", "443"]), ('"$P"', ["80 443"]), ("a  b", ["a", "b"]), ('a "" b', ["a", "b"]),
    ("a\\ b c", ["a b", "c"]), ("'x y'z", ["x yz"]), ("${UNSET}", []),
])
def test_expand_words(text: str, words: list[str]) -> None:
    assert expand_words(text, ENV) == words


def test_global_args_see_automatic_then_build_args() -> None:
    df = parse_dockerfile("ARG BASE=alpine\nARG TAG=${BASE}-1\nARG EMPTY\nFROM $BASE:$TAG\n")
    meta = global_scope(df.global_args, {"BASE": "busybox"}, {"TARGETARCH": "amd64"})
    assert meta == {"TARGETARCH": "amd64", "BASE": "busybox", "TAG": "busybox-1"}
    assert expand(df.stages[0].base, meta) == "busybox:busybox-1"


def test_stage_scope_rules() -> None:
    meta = {"V": "global", "TARGETOS": "linux"}
    scope = StageScope(meta, {"B": "from-cli", "HTTP_PROXY": "http://p", "V": None}, {"PATH": "/bin"})
    assert scope.env() == {"PATH": "/bin"}
    df = parse_dockerfile("FROM a\nARG V\nARG B=default\nARG TARGETOS\nARG N\nARG D=$B-x\nENV B=env\n")
    instructions = df.stages[0].instructions
    for arg in instructions[:5]:
        assert isinstance(arg, Arg)
        scope.declare(arg)
    assert scope.args == {"V": "global", "B": "from-cli", "TARGETOS": "linux", "D": "from-cli-x"}
    assert expand("${N-unset}", scope.env()) == "unset"
    scope.set_env("B", "env")
    assert scope.env()["B"] == "env"
    assert scope.run_env() == {"V": "global", "TARGETOS": "linux", "D": "from-cli-x"}
    # The proxies a RUN gets without an ARG stay out of its cache key and history, as in dockerd.
    assert scope.proxy_env() == {"HTTP_PROXY": "http://p"}


def test_copy_heredoc_bodies_keep_quotes_and_expand_inside_them() -> None:
    body = "a \"$A\" '$A' it's \\$A \\x ${UNSET:-d}\n"
    assert expand_heredoc(body, ENV) == "a \"a\" 'a' it's $A x d\n"


@pytest.mark.parametrize("text, args, files", [
    ('FROM a\nRUN ["echo", "x"]\n', ["echo", "x"], ()),
    ("FROM a\nRUN echo x\n", ["/bin/sh", "-c", "echo x"], ()),
    ("FROM a\nRUN <<-EOF\n\techo hi\n\tEOF\n", ["/bin/sh", "-c", "echo hi\n"], ()),
    ("FROM a\nRUN <<run.py\n#!/usr/bin/env python3\nprint(1)\nrun.py\n", ["/dev/pipes/run.py"],
     (RunFile("/dev/pipes/run.py", "#!/usr/bin/env python3\nprint(1)\n"),)),
    ("FROM a\nRUN python3 <<EOF && cat 3<<'X'\nprint(1)\nEOF\n$x\nX\n",
     ["/bin/sh", "-c", "python3 <<EOF && cat 3<<'X'\nprint(1)\nEOF\n$x\nX"], ()),
])
def test_run_process(text: str, args: list[str], files: tuple[RunFile, ...]) -> None:
    run = parse_dockerfile(text).stages[0].instructions[0]
    assert isinstance(run, Run)
    assert run_process(run, ["/bin/sh", "-c"]) == RunProcess(args, files)


@pytest.mark.parametrize("word, out", [
    ("${F%.*}", "archive.tar"), ("${F%%.*}", "archive"), ("${F#*.}", "tar.gz"), ("${F##*.}", "gz"),
    ("${F#nomatch}", "archive.tar.gz"), ("${F%?z}", "archive.tar."), ("${U#x}", ""),
    ("${P/local/opt}", "/usr/opt/bin"), ("${S//a/x}", "x-b-x-b"), ("${S/a*/z}", "z"), ("${S//?/.}", "......."),
    ("${S%\\*}", "a-b-a-b"), ("${P##*/}", "bin"), ("${P%/*}", "/usr/local"),
])
def test_pattern_operators(word: str, out: str) -> None:
    assert expand(word, {"F": "archive.tar.gz", "P": "/usr/local/bin", "S": "a-b-a-b"}) == out


@pytest.mark.parametrize("word, message", [
    ("${S/a}", "syntax error: missing '/' in ${}"),
    ("${S%\\q}", "invalid pattern (\\q) in substitution: invalid escape '\\q'"),
    ("${S:=x}", "unsupported modifier (:=) in substitution"),
])
def test_pattern_errors(word: str, message: str) -> None:
    with pytest.raises(SubstitutionError) as err:
        expand(word, {"S": "s"})
    assert err.value.message == f"failed to process {json.dumps(word)}: {message}"


def test_arg_default_errors_name_the_line() -> None:
    df = parse_dockerfile("ARG A=${NOPE:?unset}\nFROM a\nARG B=${X:?}\n")
    with pytest.raises(DockerfileError, match=r'line 1: failed to process "\$\{NOPE:\?unset\}": NOPE: unset'):
        global_scope(df.global_args, {}, {})
    arg = df.stages[0].instructions[0]
    assert isinstance(arg, Arg)
    with pytest.raises(DockerfileError, match="line 3: .*X: is not allowed to be unset"):
        StageScope({}, {}).declare(arg)


def test_hostile_nesting_is_an_error_not_a_crash() -> None:
    # Past Python's recursion limit: a Dockerfile error, as any other, never a traceback.
    with pytest.raises(SubstitutionError, match="nested too deeply"):
        expand("${a:-" * 20000 + "x" + "}" * 20000, ENV)
    with pytest.raises(DockerfileError, match="arrays must be comprised of strings only"):
        parse_dockerfile("FROM scratch\nCMD " + "[" * 5000 + "\n")
