"""SIGHUP reloads the configuration of both daemons (issue 14, acceptance 2).

Two proxies in front of the fixture registry stand for two mirrors: after a reload that names the other
one, the next pull goes there. A broken file is refused with a logged reason and the running configuration
(labels, mirrors) stays in force.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon, RuntimeDaemon
from tests.fixtures.proxy import Proxy
from tests.integration.test_engine_containers import ok


def _wait(check: Callable[[], bool]) -> None:
    """Reloads run beside the daemon's other work: wait for their effect (a hang fails the test's timeout)."""
    while not check():
        time.sleep(0.05)


@pytest.fixture
def mirrors(registry) -> Iterator[tuple[Proxy, Proxy]]:
    with Proxy(registry) as a, Proxy(registry) as b:
        yield a, b


def _manifest_gets(p: Proxy) -> int:
    return len(p.requests_to("/manifests/"))


def _reloads(log_path: str, what: str) -> int:
    return Path(log_path).read_text().count(what)


@pytest.fixture
def engine(tmp_path: Path, mirrors: tuple[Proxy, Proxy]) -> Iterator[tuple[EngineDaemon, Path]]:
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"registry-mirrors": [mirrors[0].url], "labels": ["zone=a"]}))
    (tmp_path / "rt").mkdir()
    rt = RuntimeDaemon(str(tmp_path / "rt"))
    rt.start()
    e = EngineDaemon(rt, extra_args=["--config-file", str(daemon_json)])
    try:
        e.start()
        yield e, daemon_json
    finally:
        e.cleanup()
        rt.cleanup()


def _info(engine: EngineDaemon) -> dict:
    return json.loads(ok(engine, "info", "--format", "{{json .}}"))


def _hangup(d: EngineDaemon | RuntimeDaemon) -> None:
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)


def test_engine_reloads_mirrors_and_labels_and_refuses_a_broken_file(
        engine: tuple[EngineDaemon, Path], mirrors: tuple[Proxy, Proxy]) -> None:
    e, daemon_json = engine
    a, b = mirrors
    ok(e, "pull", "busybox")
    assert _manifest_gets(a) > 0 and _manifest_gets(b) == 0
    assert _info(e)["Labels"] == ["zone=a"]

    t0 = time.time()
    daemon_json.write_text(json.dumps({"registry-mirrors": [b.url], "labels": ["zone=b", "tier=2"]}))
    _hangup(e)
    _wait(lambda: _info(e)["Labels"] == ["zone=b", "tier=2"])
    info = _info(e)
    assert info["RegistryConfig"]["Mirrors"] == [b.url]
    a.reset()
    ok(e, "rmi", "busybox")
    ok(e, "pull", "busybox")
    assert _manifest_gets(b) > 0 and _manifest_gets(a) == 0
    # dockerd announces a reload with a daemon event.
    reload_events = json.loads(ok(e, "events", "--since", f"{t0:.9f}", "--until", f"{time.time():.9f}",
                                  "--filter", "type=daemon", "--format", "{{json .}}"))
    assert reload_events["Action"] == "reload" and reload_events["Actor"]["ID"] == info["ID"]
    assert json.loads(reload_events["Actor"]["Attributes"]["labels"]) == ["zone=b", "tier=2"]  # JSON, as dockerd

    daemon_json.write_text('{"registry-mirrors": [')
    _hangup(e)
    _wait(lambda: _reloads(e.log_path, "reload refused") == 1)
    daemon_json.write_text(json.dumps({"labels": ["no-equals-sign"]}))
    _hangup(e)
    _wait(lambda: _reloads(e.log_path, "reload refused") == 2)
    assert "labels must be key=value" in Path(e.log_path).read_text()
    # A key no daemon knows refuses the whole file, as dockerd refuses it.
    daemon_json.write_text(json.dumps({"labels": ["zone=c"], "mtux": 1}))
    _hangup(e)
    _wait(lambda: _reloads(e.log_path, "reload refused") == 3)
    assert "don't match any configuration option: mtux" in Path(e.log_path).read_text()
    assert e.proc is not None and e.proc.poll() is None
    assert _info(e)["Labels"] == ["zone=b", "tier=2"]
    # What the file no longer names keeps its running value (dockerd's), not the default.
    daemon_json.write_text(json.dumps({"registry-mirrors": [b.url]}))
    _hangup(e)
    _wait(lambda: _reloads(e.log_path, "reloaded configuration") == 2)
    assert _info(e)["Labels"] == ["zone=b", "tier=2"]
    b.reset()
    ok(e, "rmi", "busybox")
    ok(e, "pull", "busybox")
    assert _manifest_gets(b) > 0 and _manifest_gets(a) == 0
    ok(e, "rmi", "busybox")


def _runtime_config(mirror: Proxy, downloads: int = 4) -> str:
    return f'max_concurrent_downloads = {downloads}\n[registry.mirrors]\n"docker.io" = ["{mirror.url}"]\n'


def _pull(rt: RuntimeDaemon, ref: str) -> None:
    async def go() -> None:
        async with rt.client("reload") as c:
            async for _ in c.pull(ref, unpack=False):
                pass

    asyncio.run(go())


def test_runtime_reloads_its_registry_config_and_refuses_a_broken_file(
        tmp_path: Path, mirrors: tuple[Proxy, Proxy]) -> None:
    a, b = mirrors
    (tmp_path / "rt").mkdir()
    rt = RuntimeDaemon(str(tmp_path / "rt"))
    rt.config = rt.write_config(_runtime_config(a))
    rt.start()
    try:
        _pull(rt, "docker.io/library/busybox:latest")
        assert _manifest_gets(a) > 0 and _manifest_gets(b) == 0

        rt.write_config(_runtime_config(b, downloads=2))
        _hangup(rt)
        _wait(lambda: _reloads(rt.log_path, "reloaded configuration") == 1)
        assert "changed=registry,max_concurrent_downloads" in Path(rt.log_path).read_text()
        a.reset()
        _pull(rt, "docker.io/library/busybox:docker")
        assert _manifest_gets(b) > 0 and _manifest_gets(a) == 0

        rt.write_config("this is = = not toml\n")
        _hangup(rt)
        _wait(lambda: _reloads(rt.log_path, "reload refused") == 1)
        rt.write_config("max_concurrent_downloads = 0\n")
        _hangup(rt)
        _wait(lambda: _reloads(rt.log_path, "reload refused") == 2)
        assert rt.proc is not None and rt.proc.poll() is None
        b.reset()
        _pull(rt, "docker.io/library/busybox:zstd")
        assert _manifest_gets(b) > 0 and _manifest_gets(a) == 0
    finally:
        rt.cleanup()


def _most_layers_at_once(messages: list[dict]) -> int:
    """The most layers between their first `Downloading` and their `Download complete` at any one time."""
    busy: set[str] = set()
    most = 0
    for m in messages:
        if m.get("status") == "Downloading":
            busy.add(m["id"])
        elif m.get("status") == "Download complete":
            busy.discard(m["id"])
        most = max(most, len(busy))
    return most


def test_engine_reloads_max_concurrent_downloads(tmp_path: Path, mirrors: tuple[Proxy, Proxy]) -> None:
    import docker

    a, _ = mirrors
    # whiteout's first layer is 1 MB, sent at 1 MB/s; its three others are tiny and start with it, unless
    # the pull may download one layer at a time.
    a.slow_blobs(1_000_000)
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"registry-mirrors": [a.url], "max-concurrent-downloads": 1}))
    (tmp_path / "rt").mkdir()
    rt = RuntimeDaemon(str(tmp_path / "rt"))
    rt.start()
    e = EngineDaemon(rt, extra_args=["--config-file", str(daemon_json)])
    try:
        e.start()
        with docker.APIClient(base_url=e.host) as api:
            assert _most_layers_at_once(list(api.pull("whiteout", tag="latest", stream=True, decode=True))) == 1
            ok(e, "rmi", "whiteout")
            daemon_json.write_text(json.dumps({"registry-mirrors": [a.url], "max-concurrent-downloads": 4}))
            _hangup(e)
            _wait(lambda: _reloads(e.log_path, "reloaded configuration") == 1)
            assert _most_layers_at_once(list(api.pull("whiteout", tag="latest", stream=True, decode=True))) > 1
            ok(e, "rmi", "whiteout")
    finally:
        e.cleanup()
        rt.cleanup()
