"""docker stats and container prune: numbers from the runtime's cgroup metrics, cleanup of stopped containers."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from typing import Any

from aiohttp import web

from engine.api.app import Router
from engine.api.query import boolean, filters
from engine.api.responses import json_response
from engine.api.streams import open_stream
from engine.backend import Backend
from engine.containers.state import rfc3339
from engine.containers.store import Container
from engine.errors import InvalidArgument
from runtime import client as rt

_PRUNE_FILTERS = {"label", "label!", "until"}


def register(r: Router, b: Backend) -> None:
    svc = b.containers

    async def stats(request: web.Request) -> web.StreamResponse:
        c = svc.get(request.match_info["id"])
        stream = boolean(request.query, "stream", True) and not boolean(request.query, "one-shot")
        previous = _empty_cpu()
        if not stream:
            return json_response(await _sample(b, c, previous))
        resp = await open_stream(request)
        while True:
            sample = await _sample(b, svc.get(c.id), previous)
            previous = sample["cpu_stats"]
            try:
                await resp.write(json.dumps(sample).encode() + b"\n")
            except (ConnectionResetError, RuntimeError):
                break
            if not svc.get(c.id).state.running:
                break
            await asyncio.sleep(1)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await resp.write_eof()
        return resp

    async def prune(request: web.Request) -> web.Response:
        f = filters(request.query)
        unknown = set(f) - _PRUNE_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter '{min(unknown)}'")
        until = _until(f.get("until", []))
        deleted: list[str] = []
        reclaimed = 0
        for c in svc.all():
            labels = c.config.get("Labels") or {}
            if c.state.running or (until is not None and c.created >= until):
                continue
            if not all(_label(spec, labels) for spec in f.get("label", [])):
                continue
            if any(_label(spec, labels) for spec in f.get("label!", [])):
                continue
            reclaimed += await _rw_size(b, c)
            await b.run.remove(c.id, force=False)
            deleted.append(c.id)
        return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    r.add("GET", "/containers/{id}/stats", stats)
    r.add("POST", "/containers/prune", prune)


def _label(spec: str, labels: dict[str, str]) -> bool:
    key, sep, value = spec.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _until(values: list[str]) -> float | None:
    if not values:
        return None
    try:
        return float(values[0])
    except ValueError:
        raise InvalidArgument(f"invalid filter 'until={values[0]}': use unix seconds") from None


async def _rw_size(b: Backend, c: Container) -> int:
    with contextlib.suppress(rt.RuntimeError_):
        record = await b.runtime.container(c.id)
        return int((await b.runtime.snapshot_usage(record["snapshotter"], record["snapshot_key"]))["size"])
    return 0


def _empty_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": 0, "online_cpus": os.cpu_count() or 1, "throttling_data": {}}


def _system_cpu_ns() -> int:
    """Host CPU time in ns, as Docker reports system_cpu_usage (from /proc/stat's cpu line)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:8]
    return sum(int(x) for x in fields) * 10**9 // os.sysconf("SC_CLK_TCK")


async def _sample(b: Backend, c: Container, previous: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = {}
    if c.state.running:
        with contextlib.suppress(rt.RuntimeError_):
            m = await b.runtime.task_metrics(c.id)
    cpu = _empty_cpu()
    cpu["cpu_usage"]["total_usage"] = m.get("cpu_usage_ns") or 0
    cpu["system_cpu_usage"] = await asyncio.to_thread(_system_cpu_ns) if m else 0
    usage = m.get("memory_usage") or 0
    io = []
    for op, key in (("read", "io_read_bytes"), ("write", "io_write_bytes")):
        if m.get(key) is not None:
            io.append({"major": 0, "minor": 0, "op": op, "value": m[key]})
    return {
        "read": rfc3339(time.time()) if m else "0001-01-01T00:00:00Z",
        "preread": "0001-01-01T00:00:00Z",
        "id": c.id,
        "name": "/" + c.name,
        "pids_stats": {"current": m.get("pids_current") or 0, **({"limit": m["pids_limit"]}
                                                                  if m.get("pids_limit") else {})},
        "cpu_stats": cpu,
        "precpu_stats": previous,
        "memory_stats": {"usage": usage, "max_usage": m.get("memory_max_usage") or 0,
                         "limit": m.get("memory_limit") or 0,
                         "stats": {"inactive_file": m.get("memory_inactive_file") or 0}} if m else {},
        "blkio_stats": {"io_service_bytes_recursive": io or None},
        "num_procs": 0,
        "storage_stats": {},
        "networks": {},
    }
