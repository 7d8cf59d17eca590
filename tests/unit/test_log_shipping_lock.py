"""A shipper's pump is never run twice at once (engine/logs/service.py `_pumped`): a `logs -f` client that hangs
up while its catch-up pumps in a thread leaves the lock held until that thread is done. Released at the
cancellation, the shipper's own loop started a second pump beside the first; one rotated the file under the
other's write, and the container's exit was never recorded."""
from __future__ import annotations

import asyncio
import threading

import pytest

from engine.logs import service


class SlowShipper:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self.most = 0

    def pump(self) -> int:
        self.running += 1
        self.most = max(self.most, self.running)
        self.release.wait(5)
        self.running -= 1
        return 1


def test_a_cancelled_pump_keeps_the_lock_until_its_thread_is_done() -> None:
    async def scenario() -> None:
        shipper, lock = SlowShipper(), asyncio.Lock()
        caller = asyncio.create_task(service._pumped(shipper, lock))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        caller.cancel()
        await asyncio.sleep(0.05)
        assert lock.locked() and not caller.done()
        second = asyncio.create_task(service._pumped(shipper, lock))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        shipper.release.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert await second == 1
        assert shipper.most == 1

    asyncio.run(scenario())
