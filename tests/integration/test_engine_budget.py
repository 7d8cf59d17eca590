"""Disk budgets and logs that outlive their container (issue 14, acceptance 6 and 8)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.fixtures.daemons import BIN, EngineDaemon, mirrored_engine

CONFIG = {"removed-logs-retention": "1h", "removed-logs-inspect": True}


def cli(engine: EngineDaemon, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=engine.env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


def ok(engine: EngineDaemon, *args: str) -> str:
    out = cli(engine, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def with_config(engine: EngineDaemon, doc: dict[str, object]) -> None:
    """Restart the engine with `doc` as its daemon.json."""
    path = Path(engine.base) / "daemon.json"
    path.write_text(json.dumps(doc))
    engine.stop()
    if "--config-file" not in engine.extra_args:
        engine.extra_args += ["--config-file", str(path)]
    engine.start()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        with_config(e, CONFIG)
        yield e


def wait_for(check, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_bad_budget_settings_refused_at_start(engine: EngineDaemon, tmp_path: Path) -> None:
    for doc, named in [({"storage-budget": {"limit": "10GB", "high": 0.5, "low": 0.7}}, "storage-budget"),
                       ({"storage-budget": {"limit": "lots"}}, "storage-budget.limit"),
                       ({"storage-budget": {"limit": "1GB", "high": 1.5}}, "storage-budget.high"),
                       ({"removed-logs-retention": "soon"}, "removed-logs-retention")]:
        path = tmp_path / "daemon.json"
        path.write_text(json.dumps(doc))
        out = subprocess.run([engine.command()[0], "--config-file", str(path), "-H", f"unix://{tmp_path}/x.sock"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2
        assert out.stderr.startswith(f"pyengined: invalid configuration: {named}: "), out.stderr


def test_logs_of_a_removed_container(engine: EngineDaemon) -> None:
    since = str(time.time() - 1)
    out = cli(engine, "run", "--rm", "--name", "lw", "busybox", "sh", "-c", "echo last words; echo err >&2; exit 3")
    assert out.returncode == 3 and out.stdout == "last words\n"
    cid = ok(engine, "events", "--since", since, "--until", str(time.time()), "--filter", "event=destroy",
             "--format", "{{.ID}}").split()[0]
    assert ok(engine, "logs", cid) == "last words\n"
    by_name = cli(engine, "logs", "lw")
    assert (by_name.stdout, by_name.stderr) == ("last words\n", "err\n")
    assert ok(engine, "logs", cid[:12]) == "last words\n"
    assert ok(engine, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid) == "removed 3\n"
    assert cid not in ok(engine, "ps", "-aq", "--no-trunc")
    sdk = docker.DockerClient(base_url=engine.host)
    try:
        assert sdk.api.logs(cid) == b"last words\nerr\n"
    finally:
        sdk.close()

    # A new container takes the name over; its own removal leaves its logs under the name.
    second = ok(engine, "create", "--name", "lw", "busybox", "echo", "second").strip()
    ok(engine, "start", "-a", "lw")
    assert ok(engine, "logs", "lw") == "second\n"
    ok(engine, "rm", "lw")
    assert ok(engine, "logs", "lw") == "second\n"
    assert ok(engine, "logs", cid) == "last words\n"

    # The default ("auto-removed"): `docker logs <id>` reads what `run --rm` removed; inspect keeps dockerd's
    # 404 for a container removed on request, and for names.
    with_config(engine, {"removed-logs-retention": "1h"})
    assert ok(engine, "logs", cid) == "last words\n"
    assert ok(engine, "logs", cid[:12]) == "last words\n"
    for gone in (second, "lw"):
        assert "No such container" in cli(engine, "container", "inspect", gone).stderr
    assert "No such container" in cli(engine, "logs", second).stderr  # the docker CLI inspects first

    # With removed-logs-inspect false, inspect is always dockerd's 404 and only the logs endpoint answers.
    with_config(engine, {"removed-logs-retention": "1h", "removed-logs-inspect": False})
    try:
        assert "No such container" in cli(engine, "container", "inspect", cid).stderr
        # pyengine logs asks the logs endpoint itself when inspect has nothing.
        mine = subprocess.run([str(BIN / "pyengine"), "-H", engine.host, "logs", "lw"], capture_output=True,
                              text=True, timeout=60)
        assert (mine.returncode, mine.stdout) == (0, "second\n"), mine.stderr
        mine = subprocess.run([str(BIN / "pyengine"), "-H", engine.host, "logs", cid[:12]], capture_output=True,
                              text=True, timeout=60)
        assert (mine.stdout, mine.stderr) == ("last words\n", "err\n")
        sdk = docker.DockerClient(base_url=engine.host)
        try:
            resp = sdk.api.get(sdk.api._url("/containers/{0}/logs", cid), params={"stdout": 1})
            assert resp.status_code == 200 and resp.content == b"\x01\x00\x00\x00\x00\x00\x00\x0blast words\n"
        finally:
            sdk.close()
    finally:
        # The window, shortened, applies to logs kept before: these are past it within a second.
        with_config(engine, {**CONFIG, "removed-logs-retention": "1s"})
    try:
        assert wait_for(lambda: not os.listdir(Path(engine.base) / "data" / "removed-logs"))
        out = cli(engine, "logs", cid)
        assert (out.returncode, out.stderr) == (1, f"Error response from daemon: No such container: {cid}\n")
        out = cli(engine, "logs", "lw")
        assert (out.returncode, out.stderr) == (1, "Error response from daemon: No such container: lw\n")
    finally:
        with_config(engine, CONFIG)


def _du(*paths: Path) -> int:
    out = subprocess.run(["du", "-s", "-B1", "-c", *map(str, paths)], capture_output=True, text=True, check=True)
    return int(out.stdout.splitlines()[-1].split()[0])


def test_system_df_matches_du_and_answers_fast(engine: EngineDaemon, tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(os.urandom(400_000))
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY blob /blob\n")
    ok(engine, "build", "-q", "-t", "dfimage", str(tmp_path))
    ok(engine, "volume", "create", "dfvol")
    ok(engine, "run", "-v", "dfvol:/data", "--name", "writer", "dfimage",
       "sh", "-c", "head -c 300000 /blob > /data/x; head -c 200000 /blob > /rw")
    for i in range(49):
        ok(engine, "create", "--name", f"idle{i}", "busybox", "true")

    sdk = docker.DockerClient(base_url=engine.host)
    try:
        df = sdk.df()
        times = []
        for _ in range(9):
            started = time.perf_counter()
            sdk.api.get(sdk.api._url("/system/df")).raise_for_status()
            times.append(time.perf_counter() - started)
    finally:
        sdk.close()
    assert len(df["Containers"]) == 50
    median = statistics.median(times)
    print(f"system df median {median * 1000:.1f} ms over {len(times)} calls with 50 containers")
    assert median < 0.05

    root = Path(engine.runtime.root)
    counted = df["LayersSize"] + sum(c.get("SizeRw", 0) for c in df["Containers"] or [])
    on_disk = _du(root / "content" / "blobs", *(p / "fs" for p in (root / "snapshots" / "overlayfs" / "snapshots").iterdir()))
    assert abs(counted - on_disk) <= 0.02 * on_disk, (counted, on_disk)
    vol = next(v for v in df["Volumes"] if v["Name"] == "dfvol")
    vol_du = _du(Path(engine.base) / "data" / "volumes" / "dfvol" / "_data")
    assert abs(vol["UsageData"]["Size"] - vol_du) <= 0.02 * vol_du
    writer = next(c for c in df["Containers"] if c["Names"] == ["/writer"])
    assert writer["SizeRw"] >= 200_000
    ok(engine, "rm", "-f", *[f"idle{i}" for i in range(49)], "writer")
    ok(engine, "volume", "rm", "dfvol")
    ok(engine, "rmi", "dfimage")


def test_budget_collects_unused_images_down_to_the_low_mark(engine: EngineDaemon, tmp_path: Path) -> None:
    names = [f"fill{i}" for i in range(6)]
    for name in names:
        ctx = tmp_path / name
        ctx.mkdir()
        (ctx / "blob").write_bytes(os.urandom(300_000))
        (ctx / "Dockerfile").write_text(f"FROM busybox\nLABEL fill={name}\nCOPY blob /blob\n")
        ok(engine, "build", "-q", "-t", name, str(ctx))
    ok(engine, "create", "--name", "keeper", "fill0", "true")  # fill0 is in use: never collected

    def usage() -> int:
        sdk = docker.DockerClient(base_url=engine.host)
        try:
            df = sdk.df()
        finally:
            sdk.close()
        return int(df["LayersSize"] + sum(c.get("SizeRw", 0) for c in df["Containers"] or [])
                   + sum(v["UsageData"]["Size"] for v in df["Volumes"]))

    total = usage()
    limit = int(total / 0.9 * 0.97)  # the high mark (90 %) sits just under what is stored now
    since = str(time.time())
    with_config(engine, {**CONFIG, "storage-budget": {"limit": limit, "high": 0.9, "low": 0.7}})
    try:
        assert wait_for(lambda: usage() <= 0.7 * limit), (usage(), limit)
        left = ok(engine, "images", "--format", "{{.Repository}}").split()
        assert "fill0" in left
        deleted = ok(engine, "events", "--since", since, "--until", str(time.time()), "--filter", "type=image",
                     "--filter", "event=delete", "--format", "{{.ID}}").split()
        assert deleted
        present = ok(engine, "images", "-q", "--no-trunc").split()
        assert not set(deleted) & set(present)
        # Least recently used first: the survivors are the newest of the unused ones.
        gone = [n for n in names if n not in left]
        kept = [n for n in names[1:] if n in left]
        assert gone and (not kept or names.index(max(gone, key=names.index)) < names.index(min(kept, key=names.index)))
    finally:
        with_config(engine, CONFIG)
        cli(engine, "rm", "-f", "keeper")
        cli(engine, "rmi", *names)


def test_system_prune_filters_as_dockerd(engine: EngineDaemon) -> None:
    """docker system prune runs each kind's prune with the same filters: every one must take them."""
    ok(engine, "create", "--label", "tier=scratch", "--name", "scratch", "busybox", "true")
    ok(engine, "create", "--name", "plain", "busybox", "true")
    ok(engine, "network", "create", "--label", "tier=scratch", "scratchnet")
    ok(engine, "network", "create", "plainnet")
    out = cli(engine, "system", "prune", "-f", "--filter", "label=tier=scratch")
    assert out.returncode == 0, out.stderr  # the build cache takes a label filter too (and matches nothing)
    left = ok(engine, "ps", "-a", "--format", "{{.Names}}").split()
    assert "plain" in left and "scratch" not in left
    nets = ok(engine, "network", "ls", "--format", "{{.Name}}").split()
    assert "plainnet" in nets and "scratchnet" not in nets

    # --volumes: anonymous volumes only (API 1.42 and later), named ones stay.
    ok(engine, "volume", "create", "named")
    ok(engine, "create", "-v", "/anon", "--name", "withanon", "busybox", "true")
    anon = [v for v in ok(engine, "volume", "ls", "-q").split() if v != "named"]
    ok(engine, "rm", "withanon")
    out = ok(engine, "system", "prune", "-af", "--volumes")
    assert "Deleted Volumes:" in out
    vols = ok(engine, "volume", "ls", "-q").split()
    assert "named" in vols and not set(anon) & set(vols)
    assert "plain" not in ok(engine, "ps", "-a", "--format", "{{.Names}}").split()
    ok(engine, "volume", "rm", "named")
    ok(engine, "pull", "busybox")
