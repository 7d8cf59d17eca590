"""Forwarding a container's lines to a remote log driver (syslog, gelf, fluentd, journald) from a thread of its own.

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
from dataclasses import dataclass
from typing import Protocol

from runtime.client.logs import LogRecord

log = logging.getLogger("engine.logs")

MAX_QUEUED = 8 << 20  # bytes of lines held for a server that does not take them
# Stopping (the container's run over, or the engine stopping) leaves this long to send what is queued.
FLUSH_TIMEOUT = 2.0


class Sender(Protocol):
    def connect(self) -> None: ...
    def send(self, rec: LogRecord) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Policy:
    """A driver's way with lines its server does not take, and with empty lines."""
    retry: float = 0.5  # seconds before the first retry
    factor: float = 2.0  # each pause this many times the last
    max_retry: float = 5.0  # the longest pause
    tries: int | None = None  # tries of a line before it is dropped; None: it waits for the server
    max_lines: int | None = None  # lines held at most besides MAX_QUEUED
    empty: bool = False  # whether empty lines are sent (dockerd sends them to fluentd and journald)


class Forwarder:
    def __init__(self, driver: str, cid: str, sender: Sender, connected: bool = False,
                 policy: Policy = Policy()) -> None:
        self._driver, self._cid, self._sender, self._policy = driver, cid, sender, policy
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
        """Queue a line; never waits. Empty lines are sent only where the policy says dockerd sends them."""
        if not self._policy.empty and not rec.data.removesuffix(b"\n"):
            return
        with self._cond:
            self._queue.append(rec)
            self._queued += len(rec.data)
            limit = self._policy.max_lines
            while self._queued > MAX_QUEUED or (limit is not None and len(self._queue) > limit):
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

    def _done(self, rec: LogRecord, sent: bool) -> None:
        with self._cond:
            if self._queue and self._queue[0] is rec:  # not dropped meanwhile
                self._queue.popleft()
                self._queued -= len(rec.data)
                self._dropped += not sent

    def _run(self) -> None:
        policy = self._policy
        pause, tries = policy.retry, 0
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
                    tries += 1
                    if policy.tries is not None and tries >= policy.tries:
                        self._done(rec, sent=False)
                        tries = 0
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopping is not None, pause)
                    pause = min(pause * policy.factor, policy.max_retry)
                    continue
                pause, tries = policy.retry, 0
                self._done(rec, sent=True)
                with self._cond:
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
