"""GET /events of pyengined, driven by the real docker CLI and the docker SDK (CLIENT-FLOWS §5.15)."""
from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
from typing import Any

import docker

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

# The containers module's engine (busybox pulled) and its clean-up between tests.
engine, no_leftovers = containers.engine, containers.no_leftovers


def _ts(t: float) -> str:
    return f"{t:.9f}"


def _ts_ns(ns: int) -> str:
    # Exact: a float of seconds cannot carry nanoseconds.
    return f"{ns // 10**9}.{ns % 10**9:09d}"


def events(engine, since: float, until: float | str | None = None, *filters: str) -> list[dict[str, Any]]:
    """What `docker events --since … --until … --format '{{json .}}'` prints, parsed."""
    until = until if isinstance(until, str) else _ts(until or time.time())
    args = ["events", "--since", _ts(since), "--until", until, "--format", "{{json .}}"]
    for f in filters:
        args += ["--filter", f]
    return [json.loads(line) for line in ok(engine, *args).splitlines()]


def of(name: str, evs: list[dict[str, Any]]) -> list[str]:
    return [e["Action"] for e in evs if e["Actor"]["Attributes"].get("name") == name]


def test_run_rm_replays_create_attach_start_die_destroy(engine):
    t0 = time.time()
    out = cli(engine, "run", "--rm", "--name", "ev1", "--label", "team=a", "busybox", "sh", "-c", "exit 3")
    assert out.returncode == 3, out.stderr
    evs = events(engine, t0)
    assert of("ev1", evs) == ["create", "attach", "start", "die", "destroy"]
    die = next(e for e in evs if e["Action"] == "die")
    cid = die["Actor"]["ID"]
    assert len(cid) == 64
    assert die["Actor"]["Attributes"] == {"exitCode": "3", "image": "busybox", "name": "ev1", "team": "a"}
    # The legacy fields, scope and both clocks, as dockerd sends them.
    assert (die["status"], die["id"], die["from"], die["Type"], die["scope"]) == ("die", cid, "busybox",
                                                                                "container", "local")
    assert die["time"] == die["timeNano"] // 10**9 and t0 <= die["timeNano"] / 1e9 <= time.time()

    only_dies = events(engine, t0, None, "type=container", "event=die")
    assert [(e["Action"], e["Actor"]["ID"]) for e in only_dies] == [("die", cid)]
    # Nothing before `since`, nothing after `until`.
    assert events(engine, time.time()) == []
    assert of("ev1", events(engine, t0, _ts_ns(die["timeNano"]))) == ["create", "attach", "start", "die"]


def test_the_cli_prints_events_in_its_own_format(engine):
    t0 = time.time()
    cid = ok(engine, "create", "--name", "fmt", "busybox", "true").strip()
    lines = ok(engine, "events", "--since", _ts(t0), "--until", _ts(time.time())).splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"container create {cid} (image=busybox, name=fmt)"), lines


def test_filters_container_label_image_and_event_prefix(engine):
    t0 = time.time()
    a = ok(engine, "create", "--name", "fa", "--label", "team=a", "busybox", "true").strip()
    ok(engine, "create", "--name", "fb", "--label", "team=b", "busybox", "true")
    ok(engine, "run", "-d", "--name", "fx", "busybox", "sleep", "1000")
    assert cli(engine, "exec", "fx", "sh", "-c", "exit 4").returncode == 4
    ok(engine, "rename", "fx", "fy")
    ok(engine, "pause", "fy")
    ok(engine, "unpause", "fy")
    ok(engine, "stop", "-t", "1", "fy")
    evs = events(engine, t0)

    assert {e["Actor"]["ID"] for e in events(engine, t0, None, "container=fa")} == {a}
    assert {e["Actor"]["ID"] for e in events(engine, t0, None, f"container={a[:10]}")} == {a}
    assert of("fa", events(engine, t0, None, "label=team=a")) == ["create"]
    assert of("fb", events(engine, t0, None, "label=team=a")) == []
    assert len(events(engine, t0, None, "label=team")) == 2
    assert len(events(engine, t0, None, "image=busybox", "type=container")) == len(evs)
    assert events(engine, t0, None, "image=other") == []

    execs = [e for e in evs if e["Action"].startswith("exec_")]
    assert [e["Action"] for e in execs] == ["exec_create: sh -c exit 4", "exec_start: sh -c exit 4", "exec_die"]
    assert len({e["Actor"]["Attributes"]["execID"] for e in execs}) == 1
    assert execs[-1]["Actor"]["Attributes"]["exitCode"] == "4"
    # exec_start asks for "exec_start: <command>" events by their first word.
    assert len(events(engine, t0, None, "event=exec_start")) == 1

    rename = next(e for e in evs if e["Action"] == "rename")
    assert rename["Actor"]["Attributes"]["oldName"] == "/fx" and rename["Actor"]["Attributes"]["name"] == "fy"
    # stop: the signal, the exit, then stop itself (SIGKILL after the 1 s timeout, since sleep ignores SIGTERM).
    tail = [(e["Action"], e["Actor"]["Attributes"].get("signal")) for e in evs
            if e["Actor"]["Attributes"].get("name") == "fy" and e["Action"] in ("pause", "unpause", "kill", "die",
                                                                             "stop")]
    assert tail == [("pause", None), ("unpause", None), ("kill", "15"), ("kill", "9"), ("die", None),
                    ("stop", None)]


def test_image_events_pull_tag_untag(engine):
    t0 = time.time()
    ok(engine, "pull", "busybox")
    ok(engine, "tag", "busybox", "evtest:v1")
    ok(engine, "rmi", "evtest:v1")
    evs = events(engine, t0, None, "type=image")
    image_id = json.loads(ok(engine, "image", "inspect", "busybox"))[0]["Id"]
    got = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"]) for e in evs]
    assert got == [("pull", "busybox:latest", "busybox"), ("tag", image_id, "evtest:v1"),
                   ("untag", image_id, image_id)]
    assert evs[0]["status"] == "pull" and "from" not in evs[0]
    assert [e["Action"] for e in events(engine, t0, None, "image=evtest")] == ["tag"]


def test_until_in_the_future_streams_then_ends(engine):
    t0 = time.time()
    proc = subprocess.Popen(["docker", "events", "--since", _ts(t0), "--until", _ts(t0 + 4), "--format",
                             "{{.Action}} {{.Actor.Attributes.name}}"], env=engine.env(), stdout=subprocess.PIPE,
                            text=True)
    try:
        time.sleep(1)
        ok(engine, "create", "--name", "later", "busybox", "true")
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out.splitlines() == ["create later"]
    assert time.time() - t0 >= 4


def test_sdk_streams_events_while_a_container_runs(engine, sdk):
    """Issue acceptance 6: APIClient.events(decode=True) sees a container's life as it happens."""
    api = docker.APIClient(base_url=engine.host)
    stream = api.events(decode=True, filters={"type": "container"})
    seen: list[dict[str, Any]] = []

    def read() -> None:
        for ev in stream:
            seen.append(ev)
            if ev["Action"] == "destroy" and ev["Actor"]["Attributes"].get("name") == "sdkev":
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    t0 = time.time()
    assert sdk.containers.run("busybox", ["sh", "-c", "sleep 0.5; echo done"], name="sdkev", remove=True) == b"done\n"
    reader.join(15)
    stream.close()
    api.close()
    assert not reader.is_alive(), seen
    assert of("sdkev", seen) == ["create", "start", "die", "destroy"]

    replay = list(sdk.events(since=t0, until=time.time(), decode=True, filters={"container": "sdkev"}))
    assert [e["Action"] for e in replay] == ["create", "start", "die", "destroy"]


def test_bad_requests_are_400(engine):
    status, ctype, body = curl(engine, "GET", "/v1.41/events?filters=" + urllib.parse.quote('{"nope":["x"]}'))
    assert (status, ctype, json.loads(body)) == (400, "application/json", {"message": "invalid filter 'nope'"})
    out = cli(engine, "events", "--filter", "nope=x", "--until", _ts(time.time()))
    assert out.returncode == 1 and "invalid filter 'nope'" in out.stderr
    status, _, body = curl(engine, "GET", "/v1.41/events?since=20&until=10")
    assert status == 400 and "cannot be after" in json.loads(body)["message"]
    status, _, body = curl(engine, "GET", "/v1.41/events?since=yesterday")
    assert status == 400 and "since" in json.loads(body)["message"]
