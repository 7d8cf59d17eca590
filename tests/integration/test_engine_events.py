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
    assert die["Actor"]["Attributes"] == {"execDuration": "0", "exitCode": "3", "image": "busybox", "name": "ev1",
                                          "team": "a"}
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
    a = ok(engine, "create", "--name", "fq", "--label", "team=a", "busybox", "true").strip()
    ok(engine, "create", "--name", "fb", "--label", "team=b", "busybox", "true")
    ok(engine, "run", "-d", "--name", "fx", "busybox", "sleep", "1000")
    assert cli(engine, "exec", "fx", "sh", "-c", "exit 4").returncode == 4
    ok(engine, "rename", "fx", "fy")
    ok(engine, "pause", "fy")
    ok(engine, "unpause", "fy")
    ok(engine, "stop", "-t", "1", "fy")
    evs = events(engine, t0, None, "type=container")

    # "q" is no hex digit: the name prefix cannot also be a prefix of some object's ID (a network's, say).
    assert {e["Actor"]["ID"] for e in events(engine, t0, None, "container=fq")} == {a}
    assert {e["Actor"]["ID"] for e in events(engine, t0, None, f"container={a[:10]}")} == {a}
    assert of("fq", events(engine, t0, None, "label=team=a")) == ["create"]
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
    # Go's readings: signed Unix times, and a `null` filter set.
    for query in ("since=-1&until=1", "since=%2B5&until=6", "since=1&until=2&filters=null"):
        status, _, body = curl(engine, "GET", f"/v1.41/events?{query}")
        assert status == 200, (query, body)


def _actions(evs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["Type"], e["Action"]) for e in evs]


def test_run_rm_on_the_default_bridge_tells_of_the_network_as_dockerd(engine):
    """dockerd 28's sequence: the network is joined before start and left before the death is told (moby#41698)."""
    t0 = time.time()
    ok(engine, "run", "--rm", "--name", "netev", "busybox", "true")
    evs = events(engine, t0)
    assert _actions(evs) == [("container", "create"), ("container", "attach"), ("network", "connect"),
                             ("container", "start"), ("network", "disconnect"), ("container", "die"),
                             ("container", "destroy")]
    cid = evs[0]["Actor"]["ID"]
    bridge = json.loads(ok(engine, "network", "inspect", "bridge"))[0]["Id"]
    for ev in (evs[2], evs[4]):
        assert ev["Actor"] == {"ID": bridge, "Attributes": {"container": cid, "name": "bridge", "type": "bridge"}}
        # Network events carry none of the legacy status/id/from fields.
        assert {"status", "id", "from"}.isdisjoint(ev) and ev["scope"] == "local"
    assert _actions(events(engine, t0, None, "type=network")) == [("network", "connect"), ("network", "disconnect")]
    assert len(events(engine, t0, None, "network=bridge")) == 2
    assert len(events(engine, t0, None, f"network={bridge[:12]}", "event=connect")) == 1
    assert events(engine, t0, None, "type=volume") == []
    # The CLI's own rendering: attributes sorted by key.
    lines = ok(engine, "events", "--since", _ts(t0), "--until", _ts(time.time()), "--filter",
               "type=network").splitlines()
    assert lines[0].endswith(f"network connect {bridge} (container={cid}, name=bridge, type=bridge)"), lines


def test_volumes_are_created_mounted_unmounted_and_destroyed_as_dockerd_tells(engine):
    """Attributes as dockerd 20.10 gave them on this machine; the order is dockerd 28's (mounts before connect)."""
    t0 = time.time()
    ok(engine, "run", "--rm", "--name", "volev", "-v", "evnamed:/data:ro", "-v", "/anon", "busybox", "true")
    evs = events(engine, t0)
    cid = next(e["Actor"]["ID"] for e in evs if e["Type"] == "container")
    anon = next(e["Actor"]["ID"] for e in evs if e["Type"] == "volume" and e["Actor"]["ID"] != "evnamed")
    assert _actions(evs) == [("volume", "create"), ("volume", "create"), ("container", "create"),
                             ("container", "attach"), ("volume", "mount"), ("volume", "mount"),
                             ("network", "connect"), ("container", "start"), ("network", "disconnect"),
                             ("volume", "unmount"), ("volume", "unmount"), ("container", "die"),
                             ("volume", "destroy"), ("container", "destroy")]
    mounts = {e["Actor"]["ID"]: e["Actor"]["Attributes"] for e in evs if e["Action"] == "mount"}
    assert mounts == {
        "evnamed": {"container": cid, "destination": "/data", "driver": "local", "propagation": "",
                    "read/write": "false"},
        anon: {"container": cid, "destination": "/anon", "driver": "local", "propagation": "",
               "read/write": "true"}}
    assert all(e["Actor"]["Attributes"] == {"container": cid, "driver": "local"}
               for e in evs if e["Action"] == "unmount")
    # --rm takes the anonymous volume with the container; the named one stays until it is removed.
    assert [e["Actor"]["ID"] for e in evs if e["Action"] == "destroy" and e["Type"] == "volume"] == [anon]
    ok(engine, "volume", "rm", "evnamed")
    named = events(engine, t0, None, "volume=evnamed")
    assert [e["Action"] for e in named] == ["create", "mount", "unmount", "destroy"]
    assert named[-1]["Actor"]["Attributes"] == {"driver": "local"}


def test_every_volume_create_is_told_an_existing_volumes_too(engine):
    """As dockerd 20.10 did on this machine: `volume create` twice and a container naming it, three creates."""
    t0 = time.time()
    ok(engine, "volume", "create", "evtwice")
    ok(engine, "volume", "create", "evtwice")
    ok(engine, "create", "-v", "evtwice:/d", "busybox", "true")
    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]) for e in events(engine, t0, None, "type=volume")] \
        == [("create", "evtwice", {"driver": "local"})] * 3


def test_network_connect_events_only_for_running_containers(engine):
    # The autouse clean-up takes the network and containers away.
    ok(engine, "network", "create", "evnet")
    t0 = time.time()
    ok(engine, "create", "--name", "evstopped", "busybox", "true")
    ok(engine, "network", "connect", "evnet", "evstopped")
    ok(engine, "network", "disconnect", "evnet", "evstopped")
    run = ok(engine, "run", "-d", "--name", "evrunning", "busybox", "sleep", "1000").strip()
    ok(engine, "network", "connect", "evnet", "evrunning")
    ok(engine, "network", "disconnect", "evnet", "evrunning")
    ok(engine, "rm", "-f", "evrunning")
    evs = events(engine, t0, None, "type=network")
    net = json.loads(ok(engine, "network", "inspect", "evnet"))[0]["Id"]
    got = [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in evs]
    # A stopped container's connection is only recorded: dockerd tells of none of it.
    assert got == [("connect", "bridge"), ("connect", "evnet"), ("disconnect", "evnet"),
                   ("disconnect", "bridge")]
    assert {e["Actor"]["Attributes"]["container"] for e in evs} == {run}
    assert evs[1]["Actor"] == {"ID": net, "Attributes": {"container": run, "name": "evnet", "type": "bridge"}}


def test_host_and_none_containers_join_those_networks(engine):
    t0 = time.time()
    ok(engine, "run", "--rm", "--network", "none", "busybox", "true")
    ok(engine, "run", "--rm", "--network", "host", "busybox", "true")
    got = [(e["Action"], e["Actor"]["Attributes"]["name"], e["Actor"]["Attributes"]["type"])
           for e in events(engine, t0, None, "type=network")]
    assert got == [("connect", "none", "null"), ("disconnect", "none", "null"), ("connect", "host", "host"),
                   ("disconnect", "host", "host")]


def test_prunes_tell_what_they_reclaimed(engine):
    t0 = time.time()
    ok(engine, "create", "--name", "evprune", "busybox", "true")
    ok(engine, "container", "prune", "-f")
    ok(engine, "volume", "prune", "-f")
    ok(engine, "network", "prune", "-f")
    ok(engine, "builder", "prune", "-f")
    evs = [e for e in events(engine, t0) if e["Action"] == "prune"]
    assert [e["Type"] for e in evs] == ["container", "volume", "network", "builder"]
    for e in evs:
        assert e["Actor"]["ID"] == "" and e["Actor"]["Attributes"]["reclaimed"].isdigit()
        assert "id" not in e


def test_forced_removal_tells_of_its_kill(engine):
    t0 = time.time()
    ok(engine, "run", "-d", "--name", "evkill", "busybox", "sleep", "1000")
    ok(engine, "rm", "-f", "evkill")
    evs = events(engine, t0)
    assert _actions(evs) == [("container", "create"), ("network", "connect"), ("container", "start"),
                             ("container", "kill"), ("network", "disconnect"), ("container", "die"),
                             ("container", "destroy")]
    assert evs[3]["Actor"]["Attributes"]["signal"] == "9"
    assert evs[5]["Actor"]["Attributes"]["exitCode"] == "137"


def test_execs_are_told_to_their_end(engine):
    # An exec that fails to start is told started first; one still running when its container is removed is told
    # ended, as dockerd tells them.
    t0 = time.time()
    ok(engine, "run", "-d", "--name", "evexec", "--network", "none", "busybox", "sleep", "1000")
    assert cli(engine, "exec", "evexec", "nosuchprogram").returncode == 127
    ok(engine, "exec", "-d", "evexec", "sleep", "100")
    time.sleep(0.5)
    ok(engine, "rm", "-f", "evexec")
    deadline = time.monotonic() + 10
    while not any(e["Action"] == "exec_die" for e in events(engine, t0)) and time.monotonic() < deadline:
        time.sleep(0.1)
    actions = [e["Action"] for e in events(engine, t0) if e["Type"] == "container"]
    execs = [a.split(":")[0] for a in actions if a.startswith("exec_")]
    assert execs == ["exec_create", "exec_start", "exec_create", "exec_start", "exec_die"], actions
    died = [e for e in events(engine, t0) if e["Action"] == "exec_die"]
    assert died[0]["Actor"]["Attributes"]["exitCode"] == "137" and died[0]["Actor"]["Attributes"]["name"] == "evexec"


def test_a_start_that_fails_before_its_network_unmounts_its_volumes(engine):
    t0 = time.time()
    out = cli(engine, "run", "--name", "evnonet", "-v", "evvol:/v", "--network", "nosuchnet", "busybox", "true")
    assert out.returncode != 0
    volume = [e["Action"] for e in events(engine, t0) if e["Type"] == "volume"]
    assert volume == ["create", "mount", "unmount"], volume
    ok(engine, "rm", "evnonet")
    ok(engine, "volume", "rm", "evvol")
