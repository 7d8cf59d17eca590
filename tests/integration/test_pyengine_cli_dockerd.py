"""`pyengine` against the real dockerd 20.10 (API 1.41, private root and socket, no networking): the API
version is negotiated down, and the CLI's core commands and every --format case of
test_pyengine_cli_format give what the docker CLI gives against the same daemon."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.archives import legacy_archive
from tests.fixtures.dockerd import NO_NETWORK, Dockerd, dockerd, missing
from tests.fixtures.images import busybox_image
from tests.integration.test_pyengine_cli import PYENGINE
from tests.integration.test_pyengine_cli_format import CASES, EVENT_FORMATS, WINDOW, populate, same_output

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"no reference daemon: {missing()}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    with dockerd(NO_NETWORK) as d:
        seed = Path(tmp_path_factory.mktemp("seed")) / "busybox.tar"
        seed.write_bytes(legacy_archive(busybox_image(), ["busybox:latest"]))
        subprocess.run(["docker", "load", "-i", str(seed)], env=d.env(), check=True, capture_output=True)
        WINDOW[d.host] = populate(d.env())
        try:
            yield d
        finally:
            # The network's bridge device would outlive the daemon.
            ids = subprocess.run(["docker", "ps", "-aq"], env=d.env(), capture_output=True, text=True).stdout.split()
            subprocess.run(["docker", "rm", "-f", *ids], env=d.env(), capture_output=True, timeout=120)
            subprocess.run(["docker", "network", "rm", "backend"], env=d.env(), capture_output=True, timeout=60)


def cli(d: Dockerd, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(d.env(), PYENGINE_HOST=d.host)
    return subprocess.run([PYENGINE, *args], env=env, capture_output=True, text=True, input=input, timeout=120,
                          check=False)


def ok(d: Dockerd, *args: str, input: str | None = None) -> str:
    out = cli(d, *args, input=input)
    assert out.returncode == 0, f"pyengine {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c) for c in CASES])
def test_same_output_as_the_docker_cli(reference: Dockerd, args: tuple[str, ...]) -> None:
    same_output(reference.host, args)


@pytest.mark.parametrize("template", EVENT_FORMATS)
def test_events_same_output_as_the_docker_cli(reference: Dockerd, template: str) -> None:
    since, until = WINDOW[reference.host]
    assert "create" in same_output(reference.host, ("events", "--since", since, "--until", until,
                                                    "--format", template))


def test_the_api_version_is_negotiated_down(reference: Dockerd) -> None:
    assert ok(reference, "version", "--format", "{{.Client.ApiVersion}} {{.Server.ApiVersion}}") == "1.41 1.41\n"
    assert " API version:    1.41 (downgraded from 1.50)\n" in ok(reference, "version")
    # 1.41 prunes named volumes too, so -a has nothing to add and is refused, in the docker CLI's words.
    out = cli(reference, "volume", "prune", "-a", "-f")
    assert (out.returncode, out.stderr) == (
        1, '"--all" requires API version 1.42, but the Docker daemon API version is 1.41\n')


def test_core_commands(reference: Dockerd) -> None:
    d = reference
    out = cli(d, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (out.returncode, out.stdout, out.stderr) == (3, "out\n", "err\n")
    assert ok(d, "run", "-i", "--rm", "--network", "none", "busybox", "cat", input="piped\n") == "piped\n"
    cid = ok(d, "run", "-d", "--name", "core", "--init", "--network", "none", "-l", "k=v", "busybox",
             "sh", "-c", "echo started; sleep 600").strip()
    assert len(cid) == 64
    assert ok(d, "ps", "-q", "--filter", "name=core") == cid[:12] + "\n"
    assert ok(d, "ps", "-a", "--filter", "label=k=v", "--format", "{{.Names}} {{.State}}") == "core running\n"
    assert ok(d, "exec", "core", "sh", "-c", "echo $((6*7))") == "42\n"
    assert ok(d, "logs", "core") == "started\n"
    assert ok(d, "inspect", "-f", "{{.Name}} {{.State.Running}} {{json .Config.Labels}}", "core") == \
        '/core true {"k":"v"}\n'
    assert ok(d, "stop", "-t", "1", "core") == "core\n"
    assert json.loads(ok(d, "inspect", "core"))[0]["State"]["Status"] == "exited"
    assert ok(d, "start", "core") == "core\n"
    assert ok(d, "rm", "-f", "core") == "core\n"
    out = cli(d, "inspect", "core")
    assert (out.returncode, out.stdout) == (1, "[]\n") and "No such object: core" in out.stderr
    assert ok(d, "volume", "create", "extra") == "extra\n"
    assert "extra" in ok(d, "volume", "ls", "-q").split()
    assert ok(d, "volume", "rm", "extra") == "extra\n"
