"""Pull and push metrics, read off the Docker progress messages those requests stream.

The messages are what the client sees, so the numbers are too: a layer counts the bytes its
progress reached (all of them once it says "Download complete" or "Pushed"); a layer that
"Already exists" or was "Mounted from" another repository moved nothing.
"""
from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from engine.metrics.tally import Counters, Histograms

# Pulls and pushes take from a fraction of a second (up to date) to many minutes (large layers).
_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_DONE = {"pull": "Download complete", "push": "Pushed"}
_MOVING = {"pull": "Downloading", "push": "Pushing"}


class Transfers:
    def __init__(self) -> None:
        self.bytes = Counters("pyengine_image_transfer_bytes", "Layer bytes moved by image pulls and pushes.",
                              ("direction",))
        self.seconds = Histograms("pyengine_image_transfer_duration_seconds",
                                  "Duration of image pulls and pushes (docker pull/push requests), by outcome.",
                                  ("direction", "outcome"), buckets=_BUCKETS)
        for direction in _DONE:
            self.bytes.touch((direction,))

    def pull(self, messages: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[dict[str, Any], None]:
        return self._track("pull", messages)

    def push(self, messages: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[dict[str, Any], None]:
        return self._track("push", messages)

    async def _track(self, direction: str, messages: AsyncGenerator[dict[str, Any], None]
                     ) -> AsyncGenerator[dict[str, Any], None]:
        started = time.monotonic()
        progress = _Progress(direction)
        outcome = "cancelled"  # the client hung up, or the stream was closed before its end
        try:
            async for message in messages:
                progress.read(message)
                if "errorDetail" in message:
                    outcome = "error"
                yield message
            if outcome != "error":
                outcome = "success"
        except Exception:
            outcome = "error"
            raise
        finally:
            await messages.aclose()
            self.bytes.inc((direction,), progress.moved())
            self.seconds.observe((direction, outcome), time.monotonic() - started)


class _Progress:
    """Per layer: the furthest progress seen and the size it announced."""

    def __init__(self, direction: str) -> None:
        self._moving, self._done = _MOVING[direction], _DONE[direction]
        self._current: dict[str, int] = {}
        self._total: dict[str, int] = {}

    def read(self, message: dict[str, Any]) -> None:
        layer, status = message.get("id"), message.get("status")
        if not isinstance(layer, str):
            return
        detail = message.get("progressDetail") or {}
        if status == self._moving:
            self._current[layer] = max(self._current.get(layer, 0), int(detail.get("current") or 0))
            self._total[layer] = int(detail.get("total") or 0)
        elif status == self._done and self._total.get(layer):
            self._current[layer] = self._total[layer]

    def moved(self) -> int:
        return sum(self._current.values())
