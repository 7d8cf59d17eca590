"""Containers' logs: shipping each running container's capture into its driver's files, and reading them back.

A container's files live in `<data-root>/containers/<id>/`, where dockerd keeps its own:
json-file's `<id>-json.log` (+ `.1`, `.2.gz`, ...), local's `local-logs/container.log`, and for syslog, gelf,
fluentd and journald, which send each line elsewhere (engine/logs/forward.py), the cache `container-cached.log`
that dockerd's dual logging keeps for `docker logs`.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote_plus

from engine import memory
from engine.errors import EngineError, Internal, NotImplemented_
from engine.logs import attrs, fluentd, journald, rotation, settings, transport
from engine.logs.forward import Forwarder, Policy, Sender
from engine.logs.fluentd import Fluentd
from engine.logs.gelf import Gelf
from engine.logs.journald import Journald
from engine.logs.jsonfile import JsonFile
from engine.logs.local import Cache, Local
from engine.logs.reader import Format, Query, read
from engine.logs.retention import Removed, RemovedLogs
from engine.logs.settings import LogSettings
from engine.logs.shipper import Shipper
from engine.logs.syslog import Syslog
from runtime.client.logs import LogRecord

log = logging.getLogger("engine.logs")

# Shipping polls the capture: often while a container writes, less once it has gone quiet.
_BUSY, _IDLE = 0.05, 0.25


class LoggedContainer(Protocol):
    """What the log service reads of a container record."""

    id: str
    name: str
    image: str
    image_id: str
    log_path: str | None  # the runtime's capture of the container's output
    config: dict[str, Any]
    host_config: dict[str, Any]

    @property
    def path(self) -> str: ...  # the process, for a tag's {{.Command}}

    @property
    def args(self) -> list[str]: ...


class ShippedContainer(LoggedContainer, Protocol):
    """What shipping to a remote driver reads besides: the time gelf puts in every message."""

    created: float


class ContainerLogs:
    def __init__(self, root: Path, driver: str, options: dict[str, str], retention: RemovedLogs | None = None,
                 journald_socket: str = journald.SOCKET) -> None:
        settings.check(driver, options)
        self._root = root
        self._journald_socket = journald_socket
        self.retention = retention
        self._driver = driver
        self._options = options
        self._shipping: dict[str, tuple[Shipper, asyncio.Lock, asyncio.Task[None]]] = {}
        # Remote drivers connected by a start (dockerd refuses the start when it cannot), awaiting ship().
        self._opened: dict[str, Forwarder] = {}
        self._shipped = 0  # bytes of output shipped since the heap was last trimmed
        self._forgetting: set[asyncio.Task[None]] = set()

    def set_defaults(self, driver: str, options: dict[str, str]) -> None:
        """New defaults (a reload) for containers created from now on; running ones keep what they have."""
        settings.check(driver, options)
        self._driver, self._options = driver, options

    def resolve(self, log_config: dict[str, Any] | None) -> dict[str, Any]:
        """HostConfig.LogConfig as inspect shows it: the daemon's driver and options filled in, checked (the
        defaults this engine applies besides, such as json-file's rotation, are not shown, as dockerd's local
        driver does not show its own)."""
        s = settings.resolve(log_config, self._driver, self._options)
        return {"Type": s.driver, "Config": s.configured}

    def settings_of(self, c: LoggedContainer) -> LogSettings:
        return settings.resolve(c.host_config.get("LogConfig"), self._driver, self._options)

    def path(self, c: LoggedContainer) -> Path | None:
        """inspect's LogPath: json-file's live file, which dockerd shows (and no other driver's) from the first
        start on."""
        if not c.log_path or self.settings_of(c).driver != settings.JSON_FILE:
            return None
        return self._root / c.id / JsonFile.entry_path.format(id=c.id)

    def readable(self, c: LoggedContainer) -> bool:
        return self.settings_of(c).readable

    def details(self, c: LoggedContainer) -> bytes:
        """What `docker logs --details` puts before each line: the log's attributes, `k=v` sorted and query-escaped,
        joined by commas, then a space (a space alone without any)."""
        found = attrs.attrs(c, self.settings_of(c).options)
        return ",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(found.items())).encode() + b" "

    def _format(self, c: LoggedContainer, s: LogSettings) -> Format | None:
        if s.driver == settings.JSON_FILE:
            return JsonFile(attrs.attrs(c, s.options))
        if s.driver == settings.LOCAL:
            return Local()
        if s.remote and s.readable:
            return Cache()
        return None

    def _sender(self, c: ShippedContainer, s: LogSettings) -> Sender:
        if s.driver == settings.SYSLOG:
            return Syslog(s.options, attrs.render_tag(s.options.get("tag", "{{.ID}}"), c))
        if s.driver == settings.FLUENTD:
            return Fluentd(s.options, c)
        if s.driver == settings.JOURNALD:
            return Journald(self._journald_socket, c, s.options)
        return Gelf(s.options, c)

    @staticmethod
    def _policy(s: LogSettings) -> Policy:
        if s.driver == settings.FLUENTD:
            return fluentd.policy(s.options)
        # dockerd's journald driver, as its fluentd one, sends empty lines too.
        return Policy(empty=s.driver == settings.JOURNALD)

    async def open(self, c: ShippedContainer) -> None:
        """Before a start: connect to the container's remote driver, if it has one; a start it cannot connect
        for fails, in dockerd's words."""
        s = self.settings_of(c)
        if not s.remote:
            return
        stale = self._opened.pop(c.id, None)
        if stale is not None:
            await asyncio.to_thread(stale.close, 0)
        try:
            sender = self._sender(c, s)
            # fluentd-async (-connect): the start goes on without the server, which is connected to later.
            connect = s.driver != settings.FLUENTD or fluentd.connects_first(s.options)
            if connect:
                await asyncio.to_thread(sender.connect)
        except transport.DialError as e:
            raise Internal(f"failed to initialize logging driver: {e}") from None
        except EngineError as e:
            raise Internal(e.message) from None  # the syslog socket gone since the create
        self._opened[c.id] = Forwarder(s.driver, c.id, sender, connected=connect, policy=self._policy(s))

    def _forwarder(self, c: ShippedContainer, s: LogSettings) -> Forwarder | None:
        if not s.remote:
            return None
        opened = self._opened.pop(c.id, None)
        if opened is not None:
            return opened
        try:  # shipping again after an engine restart: the forwarder connects when it can
            return Forwarder(s.driver, c.id, self._sender(c, s), policy=self._policy(s))
        except EngineError as e:
            log.warning("container=%s: cannot send its logs to %s, keeping them only here: %s", c.id, s.driver,
                        e.message)
            return None

    # shipping --------------------------------------------------------------

    def ship(self, c: ShippedContainer) -> None:
        """Start shipping a running container's output (again after an engine restart)."""
        if c.id in self._shipping or not c.log_path:
            return
        s = self.settings_of(c)
        fmt = self._format(c, s)
        forward = self._forwarder(c, s)
        if fmt is None and forward is None:
            return
        out = None
        if fmt is not None:
            out = rotation.RotatingFile(self._root / c.id / fmt.entry_path.format(id=c.id), s.max_size,
                                        s.max_file, s.compress)
        shipper = Shipper(Path(c.log_path), out, fmt or Cache(), self._root / c.id / "capture-offset", forward)
        lock = asyncio.Lock()
        task = asyncio.create_task(self._run(c.id, shipper, lock), name=f"logs-{c.id[:12]}")
        self._shipping[c.id] = (shipper, lock, task)

    async def _run(self, cid: str, shipper: Shipper, lock: asyncio.Lock) -> None:
        pause = _BUSY
        while True:
            try:
                moved = await _pumped(shipper, lock)
                self._shipped += moved
            except (OSError, ValueError) as e:
                log.warning("shipping the logs of container=%s failed: %s", cid, e)
                moved = 0
            pause = _BUSY if moved else min(pause * 2, _IDLE)
            await asyncio.sleep(pause)

    async def catch_up(self, cid: str) -> None:
        """Everything captured so far is in the driver's files."""
        entry = self._shipping.get(cid)
        if entry is None:
            return
        shipper, lock, _ = entry
        while moved := await _pumped(shipper, lock):
            self._shipped += moved

    async def drain(self, cid: str, *, run_over: bool = True) -> None:
        """Ship the rest, then stop shipping. Once the run is over, a line it left unfinished is written too;
        otherwise (the engine stopping) it is left in the capture for the next engine to finish."""
        try:
            await self.catch_up(cid)
        except (OSError, ValueError) as e:
            # What is left is still in the capture; the exit it comes at is recorded all the same.
            log.warning("shipping the last logs of container=%s failed: %s", cid, e)
        entry = self._shipping.pop(cid, None)
        if entry is not None:
            shipper, lock, task = entry
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            async with lock:
                try:
                    if run_over:
                        await asyncio.to_thread(shipper.flush)
                except (OSError, ValueError) as e:
                    log.warning("writing the last line of container=%s failed: %s", cid, e)
                await asyncio.to_thread(shipper.close)  # the forwarder's last lines go out meanwhile
        opened = self._opened.pop(cid, None)  # a start that failed after connecting
        if opened is not None:
            await asyncio.to_thread(opened.close, 0)
        if self._shipped >= memory.TRIM_AFTER:
            self._shipped = 0
            await asyncio.to_thread(memory.give_back)

    async def settle(self, c: ShippedContainer) -> None:
        """For a container found not running at engine start: ship what its last run left unshipped."""
        self.ship(c)
        await self.drain(c.id)

    def forget_soon(self, c: LoggedContainer, record: dict[str, Any] | None = None) -> None:
        """forget(), after the caller has answered its clients (an --rm container's end); removed() waits
        for it."""
        job = asyncio.create_task(self.forget(c, record), name=f"forget-logs-{c.id[:12]}")
        self._forgetting.add(job)
        job.add_done_callback(self._forgot)

    def _forgot(self, job: asyncio.Task[None]) -> None:
        self._forgetting.discard(job)
        if not job.cancelled() and (e := job.exception()) is not None:
            log.error("removing the logs of a removed container failed", exc_info=e)

    async def removed(self, ref: str) -> Removed | None:
        """The kept logs of removed container `ref` (an ID, a name or an ID prefix), once the removals under
        way have put theirs away."""
        if self._forgetting:
            await asyncio.gather(*self._forgetting, return_exceptions=True)
        return self.retention.find(ref) if self.retention is not None else None

    async def forget(self, c: LoggedContainer, record: dict[str, Any] | None = None) -> None:
        """The container is removed: its files go, or, given its last `record` and a retention window, they
        are kept for that window (engine/logs/retention.py). So does the runtime's capture of its output,
        which the runtime leaves to its reader, the shipper."""
        await self.drain(c.id)
        fmt = self._format(c, self.settings_of(c))
        if fmt is not None and record is not None and self.retention is not None and self.retention.enabled:
            path = self._root / c.id / fmt.entry_path.format(id=c.id)
            fields = {"id": c.id, "name": c.name, "image": c.image, "image_id": c.image_id, "config": c.config,
                      "host_config": c.host_config}
            try:
                await asyncio.to_thread(self.retention.keep, self._root / c.id, path, fields, record)
            except OSError as e:
                log.warning("keeping the logs of removed container=%s failed, dropping them: %s", c.id, e)
        # The driver's files (rotated ones too), the capture offset and the directory they share with the
        # container's hosts and resolv.conf.
        await asyncio.to_thread(shutil.rmtree, self._root / c.id, True)
        if c.log_path:
            with contextlib.suppress(OSError):
                os.unlink(c.log_path)

    async def close(self) -> None:
        for cid in list(self._shipping):
            await self.drain(cid, run_over=False)
        await asyncio.gather(*self._forgetting, return_exceptions=True)

    # reading ---------------------------------------------------------------

    async def read(self, c: LoggedContainer, q: Query, *, follow: bool = False,
                   stop: asyncio.Event | None = None) -> AsyncIterator[list[LogRecord]]:
        s = self.settings_of(c)
        fmt = self._format(c, s)
        if fmt is None:
            raise NotImplemented_("configured logging driver does not support reading")
        path = self._root / c.id / fmt.entry_path.format(id=c.id)

        async def catch_up() -> None:
            await self.catch_up(c.id)

        shipping = self._shipping.get(c.id)
        async for batch in read(fmt, path, q, follow=follow, stop=stop, catch_up=catch_up,
                                rotating=shipping[0].out if shipping is not None else None):
            yield batch

    async def read_removed(self, r: Removed, q: Query) -> AsyncIterator[list[LogRecord]]:
        """A removed container's retained logs: all there will ever be, so no following."""
        fmt = self._format(r, self.settings_of(r))
        if fmt is None or self.retention is None:
            raise NotImplemented_("configured logging driver does not support reading")
        async for batch in read(fmt, self.retention.directory(r.id) / fmt.entry_path.format(id=r.id), q):
            yield batch


async def _pumped(shipper: Shipper, lock: asyncio.Lock) -> int:
    """One pump of `shipper` under its lock. A caller cancelled meanwhile (a `logs -f` client gone) keeps the
    lock until the pump's thread has finished: a second pump beside it would write and rotate the same files."""
    async with lock:
        work = asyncio.ensure_future(asyncio.to_thread(shipper.pump))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            while not work.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({work})
            raise
