"""`--format` and `--filter` as scripts use them: each invocation runs through the docker CLI and through
`pyengine` against the same pyengined, and the two outputs (stdout, stderr, exit code) must be the same."""
from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.integration.test_pyengine_cli import PYENGINE

# The events window of each daemon's populate().
WINDOW: dict[str, tuple[str, str]] = {}
# Times move between the two runs: "Up 3 seconds" and "4 seconds ago" are masked, and so is a table's
# padding once a time was, since a column is as wide as its widest cell ("9 seconds" becomes "10 seconds").
_TIMES = re.compile(r"(Less than a second|About a minute|About an hour|\d+ (second|minute|hour)s?)")


def _timeless(text: str) -> str:
    masked, n = _TIMES.subn("T", text)
    return re.sub(r" {2,}", "  ", masked) if n else masked


def populate(env: dict[str, str]) -> tuple[str, str]:
    """Containers, a network and volumes for the templates to show (busybox is there already); the window
    of time it took, for events (since, until)."""
    since = f"{time.time() - 1:.3f}"
    def docker(*args: str, code: int = 0) -> None:
        out = subprocess.run(["docker", *args], env=env, capture_output=True, timeout=120, check=False)
        assert out.returncode == code, out.stderr

    # One label each where a template shows them all: the docker CLI lists a map in Go's random order.
    docker("volume", "create", "--label", "tier=db", "data")
    docker("volume", "create", "--label", "owner=ops", "scratch")
    docker("network", "create", "--internal", "--label", "com.example.net=back", "backend")
    docker("run", "-d", "--name", "web", "-l", "com.example.app=shop", "-l", "tier=front",
           "-v", "data:/data", "--network", "none", "busybox", "sleep", "600")
    docker("run", "--name", "job", "-l", "com.example.app=batch", "--network", "none", "busybox",
           "sh", "-c", "exit 3", code=3)
    docker("tag", "busybox", "example.com/team/tool:1.0")
    time.sleep(1)
    return since, f"{time.time():.3f}"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        WINDOW[e.host] = populate(e.env())
        yield e
        e.reset()


def run(binary: str, host: str, args: tuple[str, ...]) -> tuple[int, str, str]:
    """One invocation's (exit code, stdout, stderr), times masked; no config file, so no saved formats."""
    env = dict(os.environ, DOCKER_HOST=host, PYENGINE_HOST=host, DOCKER_CONFIG="/nonexistent")
    out = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    return out.returncode, _timeless(out.stdout), _timeless(out.stderr)


CASES = [
    # docker ps
    ("ps", "--format", "{{.Names}}"),
    ("ps", "-a", "--format", "{{.ID}} {{.Image}} {{.Command}} {{.State}}"),
    ("ps", "-a", "--format", "table {{.Names}}\\t{{.Image}}\\t{{.Status}}"),
    ("ps", "-a", "--format", "{{json .}}"),
    ("ps", "-a", "--format", "json"),
    ("ps", "-a", "--format", '{{.Names}}={{.Label "com.example.app"}}'),
    ("ps", "-a", "--format", 'table {{.Names}}\\t{{.Label "com.example.app"}}\\t{{.Labels}}'),
    ("ps", "-a", "--format", '{{.Names}}{{if eq .State "running"}} up{{else}} down{{end}}'),
    ("ps", "-a", "--format", '{{range $i, $v := split .Labels ","}}{{$i}}:{{$v}} {{end}}'),
    ("ps", "-a", "--format", "{{upper .Names}}|{{lower .Image}}|{{title .State}}"),
    ("ps", "-a", "--format", "{{truncate .ID 5}}|{{pad .Names 2 1}}|{{.Mounts}}|{{.LocalVolumes}}"),
    ("ps", "-a", "--format", '{{printf "%-8s|%q" .Names .State}}'),
    ("ps", "-a", "--format", "{{- .Names -}}\n{{- .Networks }}"),
    ("ps", "--format", "{{println .Names}}{{.Size}}"),
    ("ps", "-a", "--format", '{{if and (ne .State "running") (not (eq .Names "web"))}}{{.Names}}{{end}}'),
    ("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"),
    ("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}"),
    ("ps", "-a", "--filter", "label=com.example.app=shop", "-q"),
    ("ps", "-a", "--filter", "name=jo", "--filter", "ancestor=busybox", "--format", "{{.Names}}"),
    ("ps", "-a", "--format", "{{.Nope}}"),
    ("ps", "--format", "{{.Names"),
    ("ps", "--format", "table"),
    ("ps", "-a", "-s"),
    ("ps", "-a", "--no-trunc"),
    ("ps", "-q", "--format", "{{.Names}}"),
    # docker images
    ("images", "--format", "{{.Repository}}:{{.Tag}}"),
    ("images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.Size}}"),
    ("images", "--format", "{{json .}}"),
    ("images", "--format", "{{.Repository}} {{.Digest}}"),
    ("images", "--digests", "--format", "table {{.Repository}}\\t{{.Digest}}"),
    ("images", "--filter", "reference=example.com/*/*", "--format", "{{.Repository}} {{.Tag}} {{.CreatedSince}}"),
    ("images", "--filter", "dangling=true", "-q"),
    ("images", "--no-trunc", "-q"),
    ("images", "-q"),
    # docker history
    ("history", "busybox"),
    ("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", "busybox"),
    ("history", "-q", "busybox"),
    ("history", "--format", "json", "busybox"),
    # docker network ls / volume ls
    ("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Internal}} {{.Labels}}"),
    ("network", "ls", "--format", "table {{.Name}}\\t{{.Driver}}\\t{{.Scope}}"),
    ("network", "ls", "--filter", "label=com.example.net", "--format", '{{.Name}} {{.Label "com.example.net"}}'),
    ("volume", "ls", "--format", '{{.Name}} {{.Driver}} {{.Label "tier"}}'),
    ("volume", "ls", "--format", "table {{.Name}}\\t{{.Labels}}\\t{{.Scope}}"),
    ("volume", "ls", "--format", "{{json .}}"),
    ("volume", "ls", "--filter", "label=tier", "-q"),
    ("volume", "ls"),
    ("network", "ls", "--no-trunc", "-q", "--filter", "name=backend"),
    # docker inspect -f on the daemon's JSON
    ("inspect", "-f", "{{.Name}} {{.State.Status}} {{.State.Running}} {{.State.ExitCode}}", "web", "job"),
    ("inspect", "-f", '{{json .Config.Cmd}} {{join .Config.Cmd " "}}', "web"),
    ("inspect", "-f", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "web"),
    ("inspect", "-f", '{{index .Config.Labels "com.example.app"}}|{{index .Config.Labels "missing"}}|', "web"),
    ("inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}", "web"),
    ("inspect", "-f", "{{with .State}}{{.ExitCode}}{{end}} {{if not .State.Running}}stopped{{end}}", "job"),
    ("inspect", "-f", "{{range $net, $conf := .NetworkSettings.Networks}}{{$net}}{{end}}", "web"),
    ("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} {{len .Config.Env}} {{.Config.Image}}", "web"),
    ("inspect", "-f", "{{.Nope}}", "web"),
    ("network", "inspect", "-f", "{{.Name}} {{.Internal}} {{json .Labels}}", "backend"),
    ("volume", "inspect", "-f", "{{.Name}}: {{.Driver}} {{index .Labels \"owner\"}}", "data", "scratch"),
    ("inspect", "-f", "{{.Name}}{{.Nope}}", "web", "job"),
    ("inspect", "-f", "{{.Name}}", "nosuch"),
    ("info", "--format", "{{.OSType}} {{json .Swarm.LocalNodeState}} {{.Containers}}"),
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c) for c in CASES])
def test_same_output_as_the_docker_cli(engine: EngineDaemon, args: tuple[str, ...]) -> None:
    same_output(engine.host, args)


EVENT_FORMATS = ["{{.Type}} {{.Action}} {{.Actor.Attributes.name}}", "{{json .}}",
                 "{{.Status}}|{{.ID}}|{{.From}}|{{.Time}}|{{.TimeNano}}|{{.Scope}}", "table {{.Type}}\\t{{.Action}}",
                 '{{if eq .Type "container"}}{{.Action}}{{with .Actor.Attributes.exitCode}} ({{.}}){{end}}{{end}}']


@pytest.mark.parametrize("template", EVENT_FORMATS)
def test_events_same_output_as_the_docker_cli(engine: EngineDaemon, template: str) -> None:
    since, until = WINDOW[engine.host]
    shown = same_output(engine.host, ("events", "--since", since, "--until", until, "--format", template))
    assert "create" in shown
    assert " volume create " in same_output(engine.host, ("events", "--since", since, "--until", until,
                                                          "--filter", "type=volume"))


def same_output(host: str, args: tuple[str, ...]) -> str:
    """Asserts that both CLIs give the same; pyengine's output."""
    theirs = run("docker", host, args)
    ours = run(PYENGINE, host, args)
    if args[0] == "images":
        # The docker CLI lists an image's names in Go's random map order.
        ours, theirs = _rows_sorted(ours, "table" in str(args)), _rows_sorted(theirs, "table" in str(args))
    assert ours == theirs
    return ours[1]


def _rows_sorted(result: tuple[int, str, str], table: bool) -> tuple[int, str, str]:
    code, out, err = result
    lines = out.splitlines()
    head, rows = (lines[:1], lines[1:]) if table else ([], lines)
    return code, "\n".join(head + sorted(rows)), err


def test_completion_offers_the_daemon_s_names(engine: EngineDaemon) -> None:
    def complete(shell: str, words: str) -> str:
        env = dict(os.environ, PYENGINE_HOST=engine.host, _PYENGINE_COMPLETE=f"complete_{shell}",
                   _TYPER_COMPLETE_ARGS=words, COMP_WORDS=words,
                   COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)))
        if shell == "fish":
            env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
        out = subprocess.run([PYENGINE], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert complete("bash", "pyengine stop w").split() == ["web"]
    assert complete("bash", "pyengine rm ").split() == ["job", "web"]
    assert complete("fish", "pyengine network rm ").split() == ["backend", "bridge", "host", "none"]
    assert complete("fish", "pyengine volume inspect s").split() == ["scratch"]
    zsh = complete("zsh", "pyengine rmi example")
    assert "example.com/team/tool\\\\:1.0" in zsh and "busybox" not in zsh
    # A daemon that cannot be reached completes nothing, and says nothing.
    env = dict(os.environ, PYENGINE_HOST="unix:///nonexistent.sock", _PYENGINE_COMPLETE="complete_bash",
               COMP_WORDS="pyengine stop ", COMP_CWORD="2")
    out = subprocess.run([PYENGINE], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (out.returncode, out.stdout.strip(), out.stderr) == (0, "", "")
