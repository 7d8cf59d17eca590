"""Schemathesis against the Docker Engine API 1.41 spec: no request to a read endpoint or to container create
gets a 5xx or hangs, and the engine logs no error while serving them. Then a plain test for each 500 found on
the way (by the fuzzing or by probing the code paths it reaches), with the exact input."""
from __future__ import annotations

import json
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet

from tests.fixtures.daemons import EngineDaemon, mirrored_engine

SPEC = Path(__file__).resolve().parent.parent / "data" / "swagger-v1.41.yaml"
# A request that takes longer than this counts as a hang.
TIMEOUT = 20

# Every read endpoint of the spec and the write every client sends first. Left out: swarm mode's routes, whose
# answer outside a swarm is dockerd's 503, and plugin installation, refused with a 501 as a feature this engine
# does not have (test_engine_swarmless.py checks both); and the reads that go out to a registry (distribution,
# search), where a random name's registry out of reach is rightly a 5xx, as a pull's is (test_engine_distribution.py
# and test_engine_search.py check them).
schema = (schemathesis.openapi.from_path(SPEC)
          .include(name_regex=r"^(GET|HEAD) |^POST /containers/create$")
          .exclude(path_regex=r"^/(swarm|nodes|services|tasks|secrets|configs)(/|$)|^/plugins/privileges$"
                              r"|^/distribution/|^/images/search$"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    """An engine also on loopback TCP (requests, which schemathesis drives, has no unix sockets) with busybox."""
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host, tcp=True) as e:
        yield e


@pytest.fixture(scope="module")
def known(engine: EngineDaemon) -> dict[str, list[str]]:
    """Real objects by the path's first segment, so that path parameters often name something that exists."""
    running = docker(engine, "run", "-d", "--name", "fuzz-running", "busybox", "sleep", "1000")
    docker(engine, "run", "--name", "fuzz-stopped", "busybox", "echo", "hello")
    stopped = docker(engine, "inspect", "--format", "{{.Id}}", "fuzz-stopped")
    exec_id = api(engine, "POST", f"/containers/{running}/exec", json={"Cmd": ["true"]}).json()["Id"]
    image_id = docker(engine, "image", "inspect", "--format", "{{.Id}}", "busybox")
    return {
        "containers": [running, stopped, "fuzz-running", "fuzz-stopped", running[:12]],
        "images": ["busybox", "busybox:latest", "docker.io/library/busybox:latest", image_id,
                   image_id.removeprefix("sha256:")[:12]],
        "exec": [exec_id],
    }


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("binds")


def docker(engine: EngineDaemon, *args: str) -> str:
    out = subprocess.run(["docker", *args], env=engine.env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout.strip()


def base_url(engine: EngineDaemon) -> str:
    assert engine.tcp_url is not None
    return engine.tcp_url + "/v1.41"


def api(engine: EngineDaemon, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, base_url(engine) + path, timeout=TIMEOUT, **kw)


# The filter keys each list endpoint knows. A random string is almost never JSON, so the fuzzing phase draws
# `filters` as Docker's JSON object of these instead, to reach the code that applies them.
_FILTER_KEYS = {
    "/containers/json": ["ancestor", "before", "since", "exited", "id", "label", "name", "status", "health",
                         "network", "volume", "publish", "expose", "is-task"],
    "/images/json": ["dangling", "label", "before", "since", "reference"],
    "/events": ["container", "event", "image", "label", "type", "volume", "network", "daemon"],
}


@schema.hook
def flatmap_query(ctx: schemathesis.HookContext, query: Any) -> Any:
    keys = _FILTER_KEYS.get(ctx.operation.path)
    if not keys or not isinstance(query, dict) or "filters" not in query:
        return st.just(query)
    # Values lean on what means something to the filters: patterns, key=value, references, booleans.
    value = st.text(st.characters() | st.sampled_from("[]^!-*?\\=:/@.a0"), max_size=12) | st.sampled_from(
        ["true", "false", "busybox", "busybox:latest", "fuzz-running", "running", "exited", "0"])
    filters = st.dictionaries(st.sampled_from(keys), st.lists(value, max_size=3), max_size=3)
    return filters.map(lambda f: {**query, "filters": json.dumps(f)})


def _pick(case: schemathesis.Case, choices: list[str]) -> str | None:
    """One of `choices`, or None for "keep what was generated", chosen from the rest of the case: the same case
    always picks the same (a hash, not random), so runs reproduce."""
    body = None if isinstance(case.body, NotSet) else case.body  # NotSet's repr holds its address
    seed = zlib.crc32(repr((case.query, body)).encode())
    return (choices + [None])[seed % (len(choices) + 1)]


def _prepare(case: schemathesis.Case, known: dict[str, list[str]], scratch: Path) -> None:
    """Real objects in the path, streams that end on their own, and create kept off the host's filesystem;
    everything else is sent as generated (in every phase: examples, coverage and fuzzing)."""
    path = case.operation.path
    params = case.path_parameters
    if params and len(params) == 1:
        value = _pick(case, known.get(path.split("/")[1], []))
        if value is not None:
            case.path_parameters = {next(iter(params)): value}
    query = case.query if isinstance(case.query, dict) else None
    if query is not None:
        if path.endswith("/logs"):
            query["follow"] = False  # follows until the container stops: `sleep 1000` does not
        elif path == "/containers/{id}/stats":
            query["stream"] = False  # one sample a second for as long as the container runs
        elif path == "/containers/{id}/attach/ws":
            query["stream"] = False  # a websocket open for the container's life
        elif path == "/events":
            query["until"] = str(int(time.time()))  # without it the event stream never ends
    if path == "/containers/create" and isinstance(case.body, dict):
        body = case.body
        # A random image name is a 404 before the rest of the body is looked at.
        if isinstance(body.get("Image", ""), str):
            body["Image"] = "busybox"
        host_config = body.get("HostConfig") if isinstance(body.get("HostConfig"), dict) else {}
        if host_config.get("CpusetCpus") == "0-3":
            # The spec's example, which nearly every coverage case carries, asks for CPUs a small machine lacks.
            host_config["CpusetCpus"] = "0"
        binds = host_config.get("Binds")
        if isinstance(binds, list):
            # -v creates a missing source directory on the host: keep those under the test's scratch dir.
            host_config["Binds"] = [f"{scratch}{b}" if isinstance(b, str) and b.startswith("/") else b
                                    for b in binds]


@schema.parametrize()
@hypothesis.settings(max_examples=25, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_no_server_errors(case: schemathesis.Case, engine: EngineDaemon, known: dict[str, list[str]],
                          scratch: Path) -> None:
    if case.method.upper() == "PUT" and case.operation.path == "/volumes/{name}":
        # The coverage phase tries methods the 1.41 spec lacks; this one is the 1.42 volume update, which outside a
        # swarm is dockerd's 503, as swarm's own routes are (test_engine_volumes.py checks it).
        return
    _prepare(case, known, scratch)
    response = case.call_and_validate(base_url=base_url(engine), checks=[not_a_server_error], timeout=TIMEOUT)
    if case.operation.path == "/containers/create" and response.status_code == 201:
        # Thousands of them would slow every listing after this one down.
        api(engine, "DELETE", f"/containers/{response.json()['Id']}", params={"force": "1"})


def test_engine_logged_no_errors(engine: EngineDaemon) -> None:
    """A traceback the client never saw (after a stream started, in a background task) is a bug all the same."""
    log = Path(engine.log_path).read_text(errors="replace")  # all of it: engine.log() is only the tail
    errors = [line for line in log.splitlines() if '"level": "error"' in line]
    assert not errors, "\n".join(errors[:5])


# Regressions: inputs that gave a 500 -----------------------------------------------------------------------------


def assert_400(response: requests.Response, words: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/json"
    assert words in response.json()["message"]


def test_image_reference_filter_with_a_bad_class_is_400(engine):
    for pattern in ("[z-a]", "[^]", "[!]"):
        r = api(engine, "GET", "/images/json", params={"filters": json.dumps({"reference": [pattern]})})
        assert_400(r, f"invalid reference filter '{pattern}'")


def test_top_with_ps_args_that_drop_the_pid_column_or_hold_a_nul_is_400(engine, known):
    running = known["containers"][0]
    assert_400(api(engine, "GET", f"/containers/{running}/top", params={"ps_args": "-o comm"}),
               "Couldn't find PID field in ps output")
    assert_400(api(engine, "GET", f"/containers/{running}/top", params={"ps_args": "\0"}), "NUL")
    assert api(engine, "GET", f"/containers/{running}/top", params={"ps_args": "-o pid,comm"}).json()["Titles"] \
        == ["PID", "COMMAND"]


@pytest.mark.parametrize(("body", "words"), [
    # "²".isdigit() is true but int("²") raises.
    ({"StopSignal": "²"}, "Invalid signal"),
    # -v sources are created on the host (at start: test_engine_volume_options.py): a NUL byte never can be.
    ({"HostConfig": {"Binds": ["/a\0b:/c"]}}, "error while creating mount source path"),
    # Raised by the runtime while generating the spec.
    ({"HostConfig": {"Devices": [{"PathOnHost": "/dev/null\0"}]}}, "error gathering device information"),
    # A profile is its JSON text: a path would have the daemon read a file of its host.
    ({"HostConfig": {"SecurityOpt": ["seccomp=/tmp\0"]}}, "Decoding seccomp profile failed"),
    # Types as strict as dockerd's Go decoding: these were coerced (or, too big, stored) before.
    ({"HostConfig": {"Memory": "100"}}, "HostConfig.Memory: Input should be a valid integer"),
    ({"HostConfig": {"Memory": 10**26}}, "HostConfig.Memory: Input should be less than or equal to"),
    ({"Tty": "1"}, "Tty: Input should be a valid boolean"),
    ({"HostConfig": {"ConsoleSize": [-1, 5]}}, "HostConfig.ConsoleSize.0"),
    ({"HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Mode": -1}}]}},
     "TmpfsOptions.Mode"),
])
def test_create_with_bad_input_is_400(engine, body, words):
    assert_400(api(engine, "POST", "/containers/create", json={"Image": "busybox", **body}), words)


def test_create_with_the_clis_zero_values_still_works(engine):
    r = api(engine, "POST", "/containers/create", json={
        "Image": "busybox", "Cmd": "true", "Tty": False, "StopTimeout": None,
        "HostConfig": {"Memory": 0, "ConsoleSize": [0, 0], "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                       "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]},
    })
    assert r.status_code == 201, r.text
    api(engine, "DELETE", f"/containers/{r.json()['Id']}", params={"force": "1"})


def test_request_lines_and_headers_as_long_as_gos_server_reads(engine):
    # Go's server takes up to 1 MiB of request line and headers; aiohttp's default stopped at 8 KiB a line.
    labels = {f"label-{i:05d}": "v" for i in range(2000)}
    r = api(engine, "GET", "/containers/json", params={"all": "1", "filters": json.dumps({"label": list(labels)})},
            headers={"X-Registry-Auth": "e30=" + " " * 20_000})
    assert r.status_code == 200 and r.json() == [], r.text
