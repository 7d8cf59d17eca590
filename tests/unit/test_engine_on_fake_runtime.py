"""The engine's container rules against the in-memory runtime: run control, restart policies, health
actions and reconcile, in milliseconds and with no daemon (runtime/client/testing.py)."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import Config
from engine.containers.create import Creator
from engine.containers.departures import Departures
from engine.containers.execs import ExecConfig, ExecService
from engine.containers.hostlimits import HostFeatures
from engine.containers.images import Images
from engine.containers.ipc import IpcNamespaces
from engine.containers.linkedit import LinkEditor
from engine.containers.live import Lives
from engine.containers.monitor import Monitor
from engine.containers.options import parse
from engine.containers.reconcile import Reconciler
from engine.containers.run import RunControl
from engine.containers.waits import WaitCondition
from engine.containers.state import Status
from engine.containers.store import Container, ContainerStore
from engine.containers.supervise import Supervisor
from engine.errors import Conflict, InvalidArgument
from engine.events import EventBus
from engine.images.store import ImageService, Registries
from engine.logs.service import ContainerLogs
from engine.networks.driver import Attachment, Interface
from engine.networks.model import Network
from engine.networks.service import NetworkService
from engine.runtimes import RuntimeTable
from engine.volumes.service import VolumeService
from runtime import client as rt
from runtime.client.testing import FakeRuntime

IMAGE = "docker.io/library/busybox:latest"


class NoDriver:
    """Containers here run with --network none: the network driver is never asked."""

    async def setup(self, a: Attachment) -> dict[str, Interface]:
        raise AssertionError("no network driver call expected")

    async def teardown(self, a: Attachment) -> None:
        raise AssertionError("no network driver call expected")

    async def rename(self, container_id: str, old: str, new: str) -> None:
        raise AssertionError("no network driver call expected")

    def kept(self, net: Network) -> bool:
        return False

    async def let_go(self, net: Network) -> None:
        raise AssertionError("no network driver call expected")


@dataclass
class Engine:
    runtime: FakeRuntime
    store: ContainerStore
    events: EventBus
    creator: Creator
    run: RunControl
    reconciler: Reconciler
    departures: Departures
    images: ImageService
    monitor: asyncio.Task[None] | None = None

    async def create(self, **body: object) -> Container:
        c, _ = await self.creator.create(None, parse({"Image": "busybox", "Cmd": ["sleep", "1"],
                                                      "HostConfig": {"NetworkMode": "none"}, **body}))
        return c

    def follow(self) -> None:
        """Start the event monitor (it reconciles first), as the daemon does."""
        self.monitor = asyncio.create_task(Monitor(self.run, self.reconciler, self.runtime, "test").run())


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    runtime = FakeRuntime(namespace="test")
    runtime.add_image(IMAGE, {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                              "rootfs": {"type": "layers", "diff_ids": []}})
    events = EventBus()
    store = ContainerStore(tmp_path / "containers.db")
    lives = Lives(store)
    host = HostFeatures(runtime)
    networks = NetworkService(tmp_path, tmp_path / "exec", NoDriver(), bridge_interface="ptfake0",
                              bridge_cidr="10.254.0.1/24", container_name=store.name_of,
                              container_hostname=store.hostname_of, events=events)
    await networks.ensure_builtin()
    volumes = VolumeService(tmp_path, users=store.volume_users, running=store.running_volume_users)
    departures = Departures(runtime)
    images = ImageService(runtime, events, store, Registries(), departures)
    supervisor = Supervisor(runtime, store, lives, events)
    logs = ContainerLogs(tmp_path / "containers", "json-file", {})
    ipc = IpcNamespaces(tmp_path / "exec" / "ipc", store)
    runtimes = RuntimeTable(Config())
    run = RunControl(runtime, store, lives, events, networks, volumes, supervisor, logs, ipc, runtimes, departures,
                     LinkEditor(store, lives, networks))
    e = Engine(runtime=runtime, store=store, events=events,
               creator=Creator(runtime, store, lives, Images(images), events, networks, volumes, host, ipc,
                               logs.resolve, runtimes), run=run,
               reconciler=Reconciler(runtime, store, lives, run, supervisor, networks, time.time()),
               departures=departures, images=images)
    yield e
    if e.monitor is not None:
        e.monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await e.monitor
    for c in store.all():
        with contextlib.suppress(Exception):
            await run.remove(c.id, force=True)


async def test_start_is_two_runtime_requests(engine: Engine) -> None:
    c = await engine.create()
    engine.runtime.calls.clear()
    await engine.run.start(c.id)
    assert engine.runtime.calls == ["create_task", "start_task"]
    assert engine.store.get(c.id).state.status == Status.RUNNING


async def test_an_exit_is_recorded_with_its_code(engine: Engine) -> None:
    engine.follow()
    c = await engine.create()
    await engine.run.start(c.id)
    engine.runtime.exit(c.id, 7)
    await until(lambda: engine.store.get(c.id).state.status == Status.EXITED)
    assert engine.store.get(c.id).state.exit_code == 7
    assert c.id not in [t.id for t in await engine.runtime.tasks()]  # the runtime task is gone, the container stays


async def test_an_rm_containers_runtime_side_goes_after_its_waiters_are_told(engine: Engine) -> None:
    engine.follow()
    c = await engine.create(HostConfig={"NetworkMode": "none", "AutoRemove": True})
    await engine.run.start(c.id)
    removed = engine.run.wait(c.id, WaitCondition.REMOVED)
    engine.runtime.calls.clear()
    engine.runtime.exit(c.id, 3)
    assert await removed == 3
    assert engine.store.find(c.id) is None
    # The image's removal waits for the runtime's side: the container's snapshot would keep its layers.
    await engine.images.remove(IMAGE, force=False)
    calls = engine.runtime.calls
    assert calls.index("delete_task") < calls.index("remove_container") < calls.index("remove_image")
    assert await engine.runtime.containers() == [] and await engine.runtime.tasks() == []


async def test_restart_policy_restarts_with_dockers_backoff(engine: Engine) -> None:
    engine.follow()
    c = await engine.create(HostConfig={"NetworkMode": "none", "RestartPolicy": {"Name": "on-failure",
                                                                                 "MaximumRetryCount": 2}})
    await engine.run.start(c.id)
    pids = [engine.store.get(c.id).state.pid]
    for attempt in (1, 2):
        engine.runtime.exit(c.id, 1)
        await until(lambda: engine.store.get(c.id).state.status == Status.RESTARTING)
        await until(lambda: engine.store.get(c.id).state.status == Status.RUNNING)
        assert engine.store.get(c.id).restart_count == attempt
        pids.append(engine.store.get(c.id).state.pid)
    assert len(set(pids)) == 3  # a new task each time
    engine.runtime.exit(c.id, 1)  # the third failure is past MaximumRetryCount
    await until(lambda: engine.store.get(c.id).state.status == Status.EXITED)
    await asyncio.sleep(0.3)
    assert engine.store.get(c.id).state.status == Status.EXITED


async def test_a_restarting_container_is_waited_for_as_a_running_one(engine: Engine) -> None:
    """dockerd: `docker wait` on a container between restarts ends at its next exit, or when its loop ends."""
    engine.follow()
    c = await engine.create(HostConfig={"NetworkMode": "none", "RestartPolicy": {"Name": "always"}})
    await engine.run.start(c.id)
    engine.runtime.exit(c.id, 3)
    await until(lambda: engine.store.get(c.id).state.status == Status.RESTARTING)
    waited = engine.run.wait(c.id, WaitCondition.NOT_RUNNING)
    await until(lambda: engine.store.get(c.id).state.status == Status.RUNNING)
    assert not waited.done()
    engine.runtime.exit(c.id, 5)
    assert await asyncio.wait_for(waited, 5) == 5
    await until(lambda: engine.store.get(c.id).state.status == Status.RESTARTING)
    waited = engine.run.wait(c.id, WaitCondition.NOT_RUNNING)
    await engine.run.stop(c.id, timeout=1)
    assert await asyncio.wait_for(waited, 5) == 5
    assert engine.store.get(c.id).state.status == Status.EXITED


async def test_a_manual_stop_is_not_restarted(engine: Engine) -> None:
    engine.follow()
    c = await engine.create(HostConfig={"NetworkMode": "none", "RestartPolicy": {"Name": "always"}})
    await engine.run.start(c.id)
    await engine.run.stop(c.id, timeout=1)
    await asyncio.sleep(0.3)
    state = engine.store.get(c.id).state
    assert (state.status, state.exit_code) == (Status.EXITED, 143)


async def test_unhealthy_with_restart_action_restarts_whatever_the_policy(engine: Engine) -> None:
    engine.follow()
    # The fake's exec has no attach socket: every probe fails, as a probe that cannot run does.
    c = await engine.create(Healthcheck={"Test": ["CMD", "true"], "Interval": 20_000_000, "Retries": 1},
                            Labels={"io.pyengine.health-on-failure": "restart"})
    await engine.run.start(c.id)
    first = engine.store.get(c.id).state.pid
    await until(lambda: engine.store.get(c.id).state.pid != first and engine.store.get(c.id).state.running)
    assert engine.store.get(c.id).restart_count == 1


async def test_reconcile_records_the_real_code_of_an_exit_it_missed(engine: Engine) -> None:
    c = await engine.create()
    await engine.run.start(c.id)
    engine.runtime.exit(c.id, 5)  # while nobody followed the events
    engine.follow()
    await until(lambda: engine.store.get(c.id).state.status == Status.EXITED)
    assert engine.store.get(c.id).state.exit_code == 5


async def test_reconcile_calls_a_vanished_task_255(engine: Engine) -> None:
    c = await engine.create()
    await engine.run.start(c.id)
    await engine.runtime.delete_task(c.id, force=True)  # its monitor and exit file are gone with it
    engine.follow()
    await until(lambda: engine.store.get(c.id).state.status == Status.EXITED)
    assert engine.store.get(c.id).state.exit_code == 255


async def test_a_create_cut_short_by_a_dead_engine_is_swept(engine: Engine) -> None:
    # An earlier engine made the runtime container and died before its own record.
    await engine.runtime.create_container("ab" * 32, IMAGE, {"args": ["true"]})
    await engine.runtime.create_task("ab" * 32)
    ours = await engine.create()
    engine.reconciler._started = time.time()
    engine.follow()
    await until(lambda: "remove_container" in engine.runtime.calls)
    assert [c.id for c in await engine.runtime.containers()] == [ours.id]


async def test_an_exec_that_fails_while_being_prepared_is_over_not_half_started(engine: Engine) -> None:
    c = await engine.create()
    await engine.run.start(c.id)
    execs = ExecService(engine.store, engine.runtime, engine.events, lambda _: None)
    e = execs.create(c.id, ExecConfig(Cmd=["true"], Tty=True, ConsoleSize=[24, 80]))
    asked: dict[str, object] = {}

    async def refuse(*args: object, **kwargs: object) -> None:
        asked.update(kwargs)
        raise rt.InvalidArgument("invalid terminal size")

    engine.runtime.add_exec = refuse  # type: ignore[method-assign]
    engine.runtime.calls.clear()
    with pytest.raises(rt.InvalidArgument):
        await execs.start_detached(e)
    assert asked["console_size"] == (24, 80)  # the size goes with the process, sized before it runs
    assert execs.live_ids(c.id) == [] and e.exit_code is not None and not e.running
    assert engine.runtime.calls == []  # nothing was made in the runtime, nothing is left there
    with pytest.raises(Conflict, match="has already run"):
        await execs.start_detached(e)


async def test_an_exec_with_a_relative_working_dir_is_refused_at_create(engine: Engine) -> None:
    c = await engine.create()
    await engine.run.start(c.id)
    execs = ExecService(engine.store, engine.runtime, engine.events, lambda _: None)
    with pytest.raises(InvalidArgument, match="the working directory 'relative' is invalid, it needs to be an "
                                              "absolute path"):
        execs.create(c.id, ExecConfig(Cmd=["true"], WorkingDir="relative"))
    assert execs.create(c.id, ExecConfig(Cmd=["true"], WorkingDir="/tmp")).config.WorkingDir == "/tmp"


async def test_an_exec_started_as_its_container_exits_is_told_the_container_is_not_running(engine: Engine) -> None:
    c = await engine.create()
    await engine.run.start(c.id)
    execs = ExecService(engine.store, engine.runtime, engine.events, lambda _: None)
    e = execs.create(c.id, ExecConfig(Cmd=["true"]))
    engine.runtime.exit(c.id, 0)  # the exit event has not reached the container's record yet
    with pytest.raises(Conflict, match=f"Container {c.id} is not running"):
        await execs.start_detached(e)
