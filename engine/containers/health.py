"""Healthchecks: the image's HEALTHCHECK or --health-*, probed by exec in the running container.

Docker's semantics for the probe and `State.Health` (status, failing streak, the last five results,
`health_status` events). Beyond Docker, a container labelled `io.pyengine.health-on-failure` with
`kill`, `stop` or `restart` has that done when it turns unhealthy (a restart goes through the restart
policy's backoff), instead of only a status string changing.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field

from engine.containers.exec_action import exec_action
from engine.containers.exec_env import exec_environment
from engine.containers.state import rfc3339
from engine.humanize import go_duration
from runtime import client as rt
from runtime.client.attach import Attachment

log = logging.getLogger("engine.health")

ON_FAILURE_LABEL = "io.pyengine.health-on-failure"
ON_FAILURE_ACTIONS = ("none", "kill", "stop", "restart")
_NS = 1_000_000_000
# Docker's defaults (ns): 30 s interval and timeout, no start period, 5 s start interval, 3 retries.
_DEFAULTS = {"Interval": 30 * _NS, "Timeout": 30 * _NS, "StartPeriod": 0, "StartInterval": 5 * _NS, "Retries": 3}
_MAX_OUTPUT = 4096
_KEEP = 5


class Probe(BaseModel):
    Start: str
    End: str
    ExitCode: int
    Output: str


class Health(BaseModel):
    Status: str = "starting"
    FailingStreak: int = 0
    Log: list[Probe] = Field(default_factory=list)


def config_of(config: dict[str, Any]) -> dict[str, Any] | None:
    """The effective healthcheck of a container's Config (with its Shell for CMD-SHELL), None when it has none
    (or NONE)."""
    hc = config.get("Healthcheck") or {}
    test = hc.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    # A probe is a non-tty exec: the container's environment without the TERM a `-t` container's process has.
    return {**_DEFAULTS, **{k: v for k, v in hc.items() if v}, "Shell": config.get("Shell") or ["/bin/sh", "-c"],
            "Env": exec_environment(config, False, [], [])}


def command(test: list[str], shell: list[str]) -> list[str]:
    """A probe's process, as dockerd runs it: CMD-SHELL's words after the container's Shell (its own argv entries:
    dockerd does not join them), CMD's as they are."""
    if test[0] == "CMD-SHELL":
        return [*shell, *test[1:]]
    if test[0] == "CMD":
        return list(test[1:])
    return list(test)


Changed = Callable[[str, Health, str], Awaitable[None]]  # container id, health, previous status
Told = Callable[[str, str, dict[str, str]], None]  # container id, event action, its attributes


class HealthMonitor:
    def __init__(self, runtime: rt.RuntimeAPI, changed: Changed, told: Told) -> None:
        self._rt = runtime
        self._changed = changed
        self._told = told
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, cid: str, config: dict[str, Any], health: Health, started_at: float) -> None:
        self.stop(cid)
        cfg = config_of(config)
        if cfg is None:
            return
        self._tasks[cid] = asyncio.create_task(self._loop(cid, cfg, health, started_at), name=f"health-{cid[:12]}")

    def watching(self, cid: str) -> bool:
        return cid in self._tasks

    def stop(self, cid: str, health: Health | None = None) -> None:
        """No more probes; with the container's `health`, dockerd's quiet `unhealthy` for a check that was
        running (the container paused or ended: no event, no failing streak)."""
        task = self._tasks.pop(cid, None)
        if task is not None:
            task.cancel()
            if health is not None:
                health.Status = "unhealthy"

    async def _loop(self, cid: str, cfg: dict[str, Any], health: Health, started_at: float) -> None:
        while True:
            starting = time.time() < started_at + cfg["StartPeriod"] / _NS
            await asyncio.sleep((cfg["StartInterval"] if starting and health.Status == "starting"
                                 else cfg["Interval"]) / _NS)
            probe = await self._probe(cid, cfg)
            before = health.Status
            health.Log = (health.Log + [probe])[-_KEEP:]
            if probe.ExitCode == 0:
                health.Status, health.FailingStreak = "healthy", 0
            elif time.time() < started_at + cfg["StartPeriod"] / _NS and health.Status == "starting":
                pass  # failures during the start period do not count
            else:
                health.FailingStreak += 1
                if health.FailingStreak >= cfg["Retries"]:
                    health.Status = "unhealthy"
            try:
                await self._changed(cid, health, before)
            except Exception:
                log.exception("health update of container=%s failed", cid)

    async def _probe(self, cid: str, cfg: dict[str, Any]) -> Probe:
        # A probe is an exec, told of as dockerd tells of its probes: exec_create, exec_start, exec_die.
        eid = secrets.token_hex(32)
        start = time.time()
        out = bytearray()
        code = -1
        argv = command(cfg["Test"], cfg["Shell"])
        started = truncated = False
        try:
            created = await self._rt.add_exec(cid, eid, argv, env=cfg["Env"], inherit_env=False)
            self._told(cid, exec_action("create", argv), {"execID": eid})
            attachment = await Attachment.connect(created.io.attach_socket)
            try:
                self._told(cid, exec_action("start", argv), {"execID": eid})  # told before it runs, as dockerd
                try:
                    await self._rt.start_exec(cid, eid)
                except rt.RuntimeError_ as e:
                    # runc's refusal of the probe's process, in the words dockerd passes on from containerd.
                    raise type(e)(f"OCI runtime exec failed: {e.message}: unknown") from None
                started = True
                async with asyncio.timeout(cfg["Timeout"] / _NS):
                    async for _, data in attachment:
                        truncated = truncated or len(out) + len(data) > _MAX_OUTPUT
                        out += data[:max(0, _MAX_OUTPUT - len(out))]
                    code = (await self._rt.wait_task(cid, exec_id=eid)).exit_status
            finally:
                attachment.close()
        except TimeoutError:
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.kill_task(cid, "SIGKILL", exec_id=eid)
                await self._rt.wait_task(cid, exec_id=eid)
            out = bytearray(f"Health check exceeded timeout ({go_duration(cfg['Timeout'])})".encode())
        except rt.RuntimeError_ as e:
            out = bytearray(e.message.encode())
        finally:
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.delete_exec(cid, eid)
            if started:
                self._told(cid, "exec_die", {"execID": eid, "exitCode": str(code)})
        # dockerd keeps 4096 bytes and marks the cut.
        return Probe(Start=rfc3339(start), End=rfc3339(time.time()), ExitCode=code,
                     Output=out.decode(errors="replace") + ("..." if truncated else ""))
