"""One scenario, two runtimes: the real pyruntimed through its client, and the in-memory fake the engine's
unit tests use. Whatever the engine relies on (task states, exit codes, events, typed errors) must read the
same on both, or the unit tests on the fake would prove nothing."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from runtime.client import AlreadyExists, Client, FailedPrecondition, NotFound, RuntimeAPI
from runtime.client.testing import FakeRuntime
from tests.integration.helpers import pyctr


@dataclass
class Subject:
    client: RuntimeAPI
    image: str
    ends_itself: list[str]  # a process that ends on its own with code 5, a little after it starts
    end: Callable[[str, int], None]  # what makes it end: nothing on the real runtime, the fake's exit()


@pytest.fixture(params=["pyruntimed", "fake"])
def real(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """(the daemon's socket, the pulled busybox) for the real runtime; None for the fake.

    Synchronous on purpose: the daemon fixtures start processes with their own event loops.
    """
    if request.param == "fake":
        return None
    daemon = request.getfixturevalue("runtime_daemon")
    ref = f"{request.getfixturevalue('registry').host}/library/busybox:latest"
    pyctr(request.getfixturevalue("pyctr_env"), "images", "pull", ref, check=True)
    return daemon.address, ref


@pytest.fixture
async def subject(real: tuple[str, str] | None) -> AsyncIterator[Subject]:
    if real is None:
        fake = FakeRuntime()
        fake.add_image("busybox", {"config": {}, "rootfs": {"type": "layers", "diff_ids": []}})
        yield Subject(fake, "busybox", ["exits"], fake.exit)
        return
    address, ref = real
    client = Client(address, "default")
    try:
        yield Subject(client, ref, ["sh", "-c", "sleep 0.5; exit 5"], lambda task_id, code: None)
    finally:
        for t in await client.tasks():
            await client.delete_task(t.id, force=True)
        for c in await client.containers():
            await client.remove_container(c.id)
        await client.close()


async def test_a_task_from_create_to_delete(subject: Subject) -> None:
    rt = subject.client
    events = rt.events(topics=["/tasks/exit"], announce=True)
    assert await anext(events) == {"status": "subscribed"}
    await rt.create_container("c1", subject.image, {"args": subject.ends_itself})
    with pytest.raises(AlreadyExists):
        await rt.create_container("c1", subject.image, {"args": ["true"]})
    created = await rt.create_task("c1")
    assert (created.status, created.pid > 0, bool(created.io.attach_socket)) == ("created", True, True)
    started = await rt.start_task("c1")
    assert (started.status, started.pid) == ("running", created.pid)
    with pytest.raises(FailedPrecondition):
        await rt.start_task("c1")
    with pytest.raises(FailedPrecondition):
        await rt.delete_task("c1")  # running: only a forced delete ends it
    subject.end("c1", 5)
    status = await asyncio.wait_for(rt.wait_task("c1"), 10)
    assert status.exit_status == 5
    envelope = await asyncio.wait_for(anext(events), 10)
    assert envelope["topic"] == "/tasks/exit"
    event = envelope["event"]
    assert (event["container_id"], event["id"], event["pid"], event["exit_status"]) == ("c1", "c1", created.pid, 5)
    assert (await rt.task("c1")).status == "stopped"
    assert (await rt.delete_task("c1")).exit_status == 5
    with pytest.raises(NotFound):
        await rt.task("c1")
    await rt.remove_container("c1")
    with pytest.raises(NotFound):
        await rt.container("c1")
    await events.aclose()


async def test_kill_and_exec(subject: Subject) -> None:
    rt = subject.client
    await rt.create_container("c2", subject.image, {"args": ["sleep", "100"]})
    await rt.create_task("c2")
    await rt.start_task("c2")
    added = await rt.add_exec("c2", "e1", ["sleep", "100"])
    assert (added.id, added.status, bool(added.io.attach_socket)) == ("e1", "created", True)
    assert (await rt.start_exec("c2", "e1")).status == "running"
    await rt.kill_task("c2", "SIGKILL", exec_id="e1")
    assert (await asyncio.wait_for(rt.wait_task("c2", exec_id="e1"), 10)).exit_status == 137
    await rt.delete_exec("c2", "e1")
    assert (await rt.task("c2")).status == "running"  # an exec's end is not the task's
    await rt.kill_task("c2", 9)
    assert (await asyncio.wait_for(rt.wait_task("c2"), 10)).exit_status == 137
    await rt.delete_task("c2")
    await rt.remove_container("c2")
    with pytest.raises(NotFound):
        await rt.kill_task("c2")


async def test_the_usage_of_many_snapshots_at_once_is_each_ones(subject: Subject) -> None:
    rt = subject.client
    await rt.create_container("c3", subject.image, {"args": ["true"]})
    record = await rt.container("c3")
    alone = await rt.snapshot_usage(record.snapshotter, record.snapshot_key)
    assert await rt.snapshot_usages(record.snapshotter, [record.snapshot_key, "no-such-key"]) == \
        {record.snapshot_key: alone}
    await rt.remove_container("c3")
