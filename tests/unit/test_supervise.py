"""Restart policies' supervision: a scheduled restart survives the cycle collector through its start."""
from __future__ import annotations

import asyncio
import gc
import time
import weakref
from pathlib import Path

from engine.containers.live import Live, Lives
from engine.containers.state import Status
from engine.containers.store import Container, ContainerStore
from engine.containers.supervise import Supervisor
from engine.events import EventBus
from runtime.client.testing import FakeRuntime


class ReplyStart:
    """Controls whose start waits on a future that only the waiting task holds, as a runtime reply read
    from an asyncio stream is (its StreamReader is held weakly by the transport's protocol)."""

    def __init__(self) -> None:
        self.reply: weakref.ref[asyncio.Future[None]] | None = None
        self.started = asyncio.Event()

    async def start_locked(self, c: Container, live: Live) -> None:
        reply = asyncio.get_running_loop().create_future()
        self.reply = weakref.ref(reply)
        await reply
        c.state.start(4242, time.time())
        self.started.set()

    async def stop(self, ref: str, timeout: int | None, sig: str | None = None) -> None:
        raise AssertionError("nothing stops here")


async def test_a_restart_is_not_collected_in_the_middle_of_its_start(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path / "containers.db")
    lives = Lives(store)
    supervisor = Supervisor(FakeRuntime(), store, lives, EventBus())  # type: ignore[arg-type]
    c = Container(id="c" * 64, name="loop", created=time.time(), image="busybox", image_ref="busybox",
                  image_id="sha256:" + "0" * 64, path="sh", args=[], config={},
                  host_config={"RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}})
    store.reserve(c.name, c.id)
    c.state.start(4241, time.time())
    c.state.exit(3, time.time(), False)
    controls = ReplyStart()
    live = lives.of(c.id)
    async with live.lock:
        await supervisor.after_exit(c, live, time.time(), controls)
    # Counted when decided, as dockerd counts it.
    assert c.state.status == Status.RESTARTING and c.restart_count == 1
    while controls.reply is None:  # the first delay, 100 ms
        await asyncio.sleep(0.02)

    gc.collect()  # what a full collection at that moment does
    reply = controls.reply()
    assert reply is not None, "the restart's task was destroyed in the middle of its start"
    reply.set_result(None)
    await asyncio.wait_for(controls.started.wait(), 5)
    assert c.state.status == Status.RUNNING and c.restart_count == 1
