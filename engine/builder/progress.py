"""What a build says to its client: the classic builder's JSON message stream.

The docker CLI prints each `stream` text as it comes and exits with `errorDetail.code` on an error;
the SDK takes the image ID from `Successfully built <id>` (it ignores `aux`), so that line always
comes. With `q` only the final ID is sent, as dockerd does: everything else (base image pulls
included) is held back, and sent before the error if the build fails. Messages go through a bounded
queue to the HTTP response, so a slow client slows the build's output rather than growing the daemon.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from engine.errors import EngineError
from engine.images.model import short_id
from runtime.client import RuntimeError_

_END = object()
_RED, _RESET = "\x1b[91m", "\x1b[0m"
# What a quiet build holds back for its failure: its last messages, a bound all the same.
_HELD = 10_000


class StepFailed(Exception):
    """A RUN that exited non-zero: dockerd's message, and the code the docker CLI exits with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BuildProgress:
    def __init__(self, quiet: bool = False, limit: int = 256) -> None:
        """`limit` 0: unbounded (a stage's messages held until the stages before it have printed)."""
        self.quiet = quiet
        self._queue: asyncio.Queue[Any] = asyncio.Queue(limit)
        self._held: deque[dict[str, Any]] = deque(maxlen=_HELD)

    async def put(self, message: dict[str, Any]) -> None:
        """A message as is (a base image's pull progress); held back with `q`."""
        if self.quiet:
            self._held.append(message)
            return
        await self._queue.put(message)

    async def text(self, text: str) -> None:
        """Build output (step headers, RUN output)."""
        await self.put({"stream": text})

    async def step(self, number: int, total: int, instruction: str) -> None:
        await self.text(f"Step {number}/{total} : {instruction}")
        await self.text("\n")

    async def result(self, image_id: str) -> None:
        await self.text(f" ---> {short_id(image_id)}\n")

    async def warning(self, text: str) -> None:
        await self.text(f"[Warning] {text}\n")

    async def output(self, data: bytes, stderr: bool = False) -> None:
        """A RUN step's stdout or stderr, as the process wrote it; stderr in red, as dockerd colours it."""
        text = data.decode(errors="replace")
        await self.text(f"{_RED}{text}{_RESET}" if stderr else text)

    async def built(self, image_id: str, tags: list[str]) -> None:
        if self.quiet:
            await self._queue.put({"stream": image_id + "\n"})
            return
        await self.put({"aux": {"ID": image_id}})
        await self.put({"stream": f"Successfully built {short_id(image_id)}\n"})
        for tag in tags:
            await self.put({"stream": f"Successfully tagged {tag}\n"})

    async def fail(self, message: dict[str, Any]) -> None:
        """The build's last message, an error (`failure`): what a quiet build held back goes first."""
        while self._held:
            await self._queue.put(self._held.popleft())
        await self._queue.put(message)

    def close(self) -> None:
        """No more messages: the reader's iteration ends once the queue drains."""
        try:
            self._queue.put_nowait(_END)
        except asyncio.QueueFull:
            asyncio.get_running_loop().create_task(self._queue.put(_END))

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            yield item


def failure(e: Exception) -> dict[str, Any]:
    """The stream's last message for a failed build (the docker CLI exits with `code`)."""
    if isinstance(e, StepFailed):
        return {"errorDetail": {"code": e.code, "message": e.message}, "error": e.message}
    message = e.message if isinstance(e, (EngineError, RuntimeError_)) else f"{type(e).__name__}: {e}"
    return {"errorDetail": {"message": message}, "error": message}
