"""Forwarding a container's lines to a remote log driver (syslog, gelf) from a thread of its own.

The shipper hands each finished line over without waiting: a log server that is slow or down never holds up
the container, nor the local cache that `docker logs` reads. Lines wait here, in order, while the server
cannot take them, up to a bound in bytes past which the oldest are dropped; the first failure of a run of
them is logged (one warning), and so is the return, with how many lines were dropped meanwhile.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Protocol

from runtime.client.logs import LogRecord

log = logging.getLogger("engine.logs")

MAX_QUEUED = 8 << 20  # bytes of lines held for a server that does not take them
_RETRY, _MAX_RETRY = 0.5, 5.0
# Stopping (the container's run over, or the engine stopping) leaves this long to send what is queued.
FLUSH_TIMEOUT = 2.0


class Sender(Protocol):
    def connect(self) -> None: ...
    def send(self, rec: LogRecord) -> None: ...
    def close(self) -> None: ...


class Forwarder:
    def __init__(self, driver: str, cid: str, sender: Sender, connected: bool = False) -> None:
        self._driver, self._cid, self._sender = driver, cid, sender
        self._queue: collections.deque[LogRecord] = collections.deque()
        self._queued = 0
        self._dropped = 0
        self._failing = False
        self._stopping: float | None = None  # when sending what is left must end
        self._cond = threading.Condition()
        self._connected = connected
        self._thread = threading.Thread(target=self._run, name=f"logs-{driver}-{cid[:12]}", daemon=True)
        self._thread.start()

    def put(self, rec: LogRecord) -> None:
        """Queue a line; never waits. Empty lines are not sent, as dockerd sends none to these drivers."""
        if not rec.data.removesuffix(b"\n"):
            return
        with self._cond:
            self._queue.append(rec)
            self._queued += len(rec.data)
            while self._queued > MAX_QUEUED:
                self._queued -= len(self._queue.popleft().data)
                self._dropped += 1
            self._cond.notify()

    def close(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Send what is queued (for at most `timeout`; a server failing gets one more try), then stop."""
        with self._cond:
            self._stopping = time.monotonic() + timeout
            self._cond.notify()
        self._thread.join(timeout + 1)

    def _next(self) -> LogRecord | None:
        with self._cond:
            while not self._queue and self._stopping is None:
                self._cond.wait()
            if not self._queue or (self._stopping is not None and time.monotonic() >= self._stopping):
                return None
            return self._queue[0]

    def _run(self) -> None:
        pause = _RETRY
        try:
            while (rec := self._next()) is not None:
                try:
                    if not self._connected:
                        self._sender.connect()
                        self._connected = True
                    self._sender.send(rec)
                except OSError as e:
                    self._connected = False
                    if self._stopping is not None:
                        break  # the last try, made once stopping: the rest is dropped
                    if not self._failing:
                        self._failing = True
                        log.warning("sending the logs of container=%s to %s failed, holding them: %s",
                                    self._cid, self._driver, e)
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopping is not None, pause)
                    pause = min(pause * 2, _MAX_RETRY)
                    continue
                pause = _RETRY
                with self._cond:
                    if self._queue and self._queue[0] is rec:  # not dropped meanwhile
                        self._queue.popleft()
                        self._queued -= len(rec.data)
                    if not self._failing:
                        continue
                    dropped, self._dropped, self._failing = self._dropped, 0, False
                log.info("sending the logs of container=%s to %s again (%d lines dropped meanwhile)",
                         self._cid, self._driver, dropped)
        finally:
            with self._cond:
                lost = len(self._queue) + self._dropped
            if lost:
                log.warning("container=%s: %d lines not sent to %s", self._cid, lost, self._driver)
            self._sender.close()
