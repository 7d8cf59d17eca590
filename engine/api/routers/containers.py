"""/containers: create, inspect, list, lifecycle, wait, attach, logs (CLIENT-FLOWS §5.1, §5.4-5.11)."""
from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from engine.api.app import Router
from engine.api.hijack import bridge, hijack, parse_detach_keys
from engine.api.query import boolean, filters, integer
from engine.api.responses import empty, json_response, read_json
from engine.api.streams import STDERR, STDOUT, disconnected, frame, open_stream, until
from engine.backend import Backend
from engine.containers.images import normalise
from engine.containers.run import WaitCondition
from engine.containers.options import inspect_mounts, parse
from engine.containers.state import Status, rfc3339
from engine.containers.store import Container
from engine.errors import Conflict, InvalidArgument
from runtime import client as rt
from runtime.client import logs as logfile

log = logging.getLogger("engine.api.containers")

_STATUSES = {s.value for s in Status}
_FILTERS = {"id", "name", "label", "status", "ancestor", "exited", "before", "since", "network", "volume",
            "health", "publish", "expose", "is-task"}


def register(r: Router, b: Backend) -> None:
    svc = b.containers

    async def create(request: web.Request) -> web.Response:
        req = parse(await read_json(request))
        c, warnings = await b.creator.create(request.query.get("name") or None, req)
        return json_response({"Id": c.id, "Warnings": warnings}, 201)

    async def inspect(request: web.Request) -> web.Response:
        c = svc.get(request.match_info["id"])
        return json_response({**_inspect(b, c), **(await _size(b, c) if boolean(request.query, "size") else {})})

    async def list_(request: web.Request) -> web.Response:
        q = request.query
        selected = _select(b, svc.all(), filters(q), svc.get, boolean(q, "all"), integer(q, "limit") or -1)
        out = []
        for c in selected:
            item = container_summary(b, c)
            if boolean(q, "size"):
                item.update(await _size(b, c))
            out.append(item)
        return json_response(out)

    async def start(request: web.Request) -> web.Response:
        await b.run.start(request.match_info["id"])
        return empty()

    async def stop(request: web.Request) -> web.Response:
        await b.run.stop(request.match_info["id"], integer(request.query, "t"), request.query.get("signal") or None)
        return empty()

    async def restart(request: web.Request) -> web.Response:
        await b.run.restart(request.match_info["id"], integer(request.query, "t"), request.query.get("signal") or None)
        return empty()

    async def kill(request: web.Request) -> web.Response:
        await b.run.kill(request.match_info["id"], request.query.get("signal") or None)
        return empty()

    async def pause(request: web.Request) -> web.Response:
        await b.manager.pause(request.match_info["id"])
        return empty()

    async def unpause(request: web.Request) -> web.Response:
        await b.manager.unpause(request.match_info["id"])
        return empty()

    async def rename(request: web.Request) -> web.Response:
        await b.manager.rename(request.match_info["id"], request.query.get("name", ""))
        return empty()

    async def remove(request: web.Request) -> web.Response:
        await b.run.remove(request.match_info["id"], boolean(request.query, "force"), boolean(request.query, "v"))
        return empty()

    async def top(request: web.Request) -> web.Response:
        ps_args = request.query.get("ps_args", "")
        if "\0" in ps_args:
            raise InvalidArgument("invalid ps_args: NUL byte")
        return json_response(await b.manager.top(request.match_info["id"], ps_args))

    async def resize(request: web.Request) -> web.Response:
        height, width = size_params(request)
        await b.manager.resize(request.match_info["id"], height, width)
        return web.Response(status=200)

    async def wait(request: web.Request) -> web.StreamResponse:
        try:
            condition = WaitCondition(request.query.get("condition") or WaitCondition.NOT_RUNNING)
        except ValueError:
            raise InvalidArgument(f"invalid condition: {request.query['condition']!r}") from None
        exit_code = b.run.wait(request.match_info["id"], condition)
        # Headers now: `docker run` starts the container only once it has seen them.
        resp = await open_stream(request)
        code = await until(exit_code, disconnected(request))
        if code is not None:
            with contextlib.suppress(ConnectionError):
                await resp.write(b'{"Error":null,"StatusCode":%d}\n' % code)
        return resp

    async def attach(request: web.Request) -> web.StreamResponse:
        q = request.query
        c = svc.get(request.match_info["id"])
        if c.state.status == Status.PAUSED:
            raise Conflict("You cannot attach to a paused container, unpause it first")
        try:
            keys = parse_detach_keys(q.get("detachKeys"))
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        tty = bool(c.config.get("Tty"))
        stdout, stderr = boolean(q, "stdout"), boolean(q, "stderr")
        conn = await hijack(request)
        # Past the 101 no error response can be sent: a failure just ends the stream.
        try:
            if boolean(q, "logs") and c.log_path:
                async for rec in logfile.follow(c.log_path):
                    stream = STDOUT if rec.stream == "stdout" else STDERR
                    if (stdout, stderr)[stream - 1]:
                        await conn.write(rec.data if tty else frame(stream, rec.data))
            if boolean(q, "stream"):
                att = await until(b.run.attachment(c), conn.lost.wait())
                if att is not None:
                    await bridge(conn, att, tty=tty, stdin=boolean(q, "stdin") and bool(c.config.get("OpenStdin")),
                                 stdout=stdout, stderr=stderr, close_stdin=bool(c.config.get("StdinOnce")),
                                 detach_keys=keys)
        except ConnectionError:
            pass
        except Exception:
            log.exception("attach to container=%s failed after the upgrade", c.id)
        return conn.response

    async def logs(request: web.Request) -> web.StreamResponse:
        q = request.query
        c = svc.get(request.match_info["id"])
        wanted = {"stdout": boolean(q, "stdout"), "stderr": boolean(q, "stderr")}
        if not any(wanted.values()):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        tail = q.get("tail", "all")
        lines = None if tail in ("", "all") else integer(q, "tail")
        since, until_ = _unix_ns(q, "since"), _unix_ns(q, "until")
        timestamps, tty = boolean(q, "timestamps"), bool(c.config.get("Tty"))
        run_over = b.run.run_over(c) if boolean(q, "follow") else None
        resp = await open_stream(request, content_type=None)

        async def pump() -> None:
            if not c.log_path:
                return
            async for rec in logfile.follow(c.log_path, since=since, until=until_,
                                            tail=None if lines is None or lines < 0 else lines,
                                            follow=run_over is not None, stop=run_over):
                if not wanted[rec.stream]:
                    continue
                data = rec.data
                if timestamps:
                    data = _timestamp(rec.ts) + b" " + data
                await resp.write(data if tty else frame(STDOUT if rec.stream == "stdout" else STDERR, data))

        with contextlib.suppress(ConnectionError):
            await until(pump(), disconnected(request))
        return resp

    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", list_)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/resize", resize)
    r.add("POST", "/containers/{id}/wait", wait)
    r.add("POST", "/containers/{id}/attach", attach)
    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/logs", logs)
    r.add("DELETE", "/containers/{id}", remove)


def size_params(request: web.Request) -> tuple[int, int]:
    height, width = integer(request.query, "h"), integer(request.query, "w")
    if height is None or width is None:
        raise InvalidArgument("resize needs both h and w")
    return height, width


def _unix_ns(q: Any, name: str) -> int | None:
    """Unix seconds with an optional .nnnnnnnnn fraction (what the CLI sends); 0 means unset."""
    raw = q.get(name, "")
    if not raw:
        return None
    m = re.fullmatch(r"(\d+)(?:\.(\d{1,9}))?", raw)
    if m is None:
        raise InvalidArgument(f"invalid value for {name}: {raw!r}")
    ns = int(m.group(1)) * 1_000_000_000 + int((m.group(2) or "").ljust(9, "0") or 0)
    return ns or None


def _timestamp(ns: int) -> bytes:
    """RFC 3339 with a fixed nine-digit fraction, as Docker prefixes log lines."""
    base = rfc3339(ns // 1_000_000_000).removesuffix("Z")
    return f"{base}.{ns % 1_000_000_000:09d}Z".encode()


async def _size(b: Backend, c: Container) -> dict[str, int]:
    with contextlib.suppress(rt.RuntimeError_):
        record = await b.runtime.container(c.id)
        usage = await b.runtime.snapshot_usage(record["snapshotter"], record["snapshot_key"])
        return {"SizeRw": usage["size"]}
    return {}


def _mounts(b: Backend, c: Container) -> list[dict[str, Any]]:
    return inspect_mounts(c.host_config, c.volumes, b.volumes.mountpoint)


def _exposed(c: Container) -> list[str]:
    return list(c.config.get("ExposedPorts") or {})


def _inspect(b: Backend, c: Container) -> dict[str, Any]:
    etc = b.networks.files_root / c.id if b.networks.wired(c.id) else None
    return {
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": c.path,
        "Args": c.args,
        "State": {**c.state.docker(), **({"Health": c.health.model_dump()} if c.health else {})},
        "Image": c.image_id,
        "ResolvConfPath": str(etc / "resolv.conf") if etc else "",
        "HostnamePath": "",
        "HostsPath": str(etc / "hosts") if etc else "",
        "LogPath": c.log_path or "",
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlayfs",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": c.host_config,
        "GraphDriver": {"Name": "overlayfs", "Data": None},
        "Mounts": _mounts(b, c),
        "Config": c.config,
        "NetworkSettings": b.networks.settings(c.id, _network(c), _exposed(c)),
    }


def container_summary(b: Backend, c: Container) -> dict[str, Any]:
    networks = b.networks.settings(c.id, _network(c), [])["Networks"]
    published = b.networks.published(c.id)
    bound = {f"{p['PrivatePort']}/{p['Type']}" for p in published}
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": " ".join([c.path, *c.args]),
        "Created": int(c.created),
        "Ports": published + [{"PrivatePort": port, "Type": proto} for port, proto in _exposed_ports(c)
                              if f"{port}/{proto}" not in bound],
        "Labels": c.config.get("Labels") or {},
        "State": c.state.status.value,
        "Status": c.state.text() + _health_suffix(c),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": networks},
        "Mounts": _mounts(b, c),
    }


def _select(b: Backend, containers: list[Container], f: dict[str, list[str]], lookup: Callable[[str], Container],
            all_: bool, limit: int) -> list[Container]:
    """docker ps: newest first; values of one filter OR'ed (labels AND'ed), filters AND'ed."""
    unknown = set(f) - _FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{min(unknown)}'")
    for status in f.get("status", []):
        if status not in _STATUSES:
            raise InvalidArgument(f"invalid filter 'status={status}'")
    # Asking for a status, an exit code or a count implies stopped containers too.
    all_ = all_ or bool(f.get("status") or f.get("exited")) or limit > 0
    before = lookup(f["before"][0]).created if f.get("before") else None
    since = lookup(f["since"][0]).created if f.get("since") else None
    ancestors = [_ancestor(a) for a in f.get("ancestor", [])]
    out = []
    for c in sorted(containers, key=lambda c: c.created, reverse=True):
        labels = c.config.get("Labels") or {}
        checks = [
            all_ or c.state.running or c.state.status == Status.RESTARTING,
            not f.get("id") or any(c.id.startswith(v) for v in f["id"]),
            not f.get("name") or any(_name_matches(v, c.name) for v in f["name"]),
            all(_label_matches(v, labels) for v in f.get("label", [])),
            not f.get("status") or c.state.status.value in f["status"],
            not f.get("exited") or (c.state.status == Status.EXITED and str(c.state.exit_code) in f["exited"]),
            not ancestors or any(a(c) for a in ancestors),
            before is None or c.created < before,
            since is None or c.created > since,
            not f.get("network") or bool(_networks_of(b, c) & {"bridge" if n == "default" else n
                                                                 for n in f["network"]}),
            not f.get("volume") or any(m["Source"] in f["volume"] or m["Destination"] in f["volume"]
                                       or m.get("Name") in f["volume"] for m in _mounts(b, c)),
            # No container has a healthcheck running or is a swarm task.
            not f.get("health") or (c.health.Status if c.health and c.state.running else "none") in f["health"],
            not f.get("publish") or _ports_match(f["publish"], [(p["PublicPort"], p["Type"])
                                                                for p in b.networks.published(c.id)]),
            not f.get("expose") or _ports_match(f["expose"], _exposed_ports(c)),
            not f.get("is-task") or any(v.lower() in ("false", "0") for v in f["is-task"]),
        ]
        if all(checks):
            out.append(c)
    return out[:limit] if limit > 0 else out


def _health_suffix(c: Container) -> str:
    if c.health is None or not c.state.running:
        return ""
    return " (health: starting)" if c.health.Status == "starting" else f" ({c.health.Status})"


def _exposed_ports(c: Container) -> list[tuple[int, str]]:
    out = []
    for key in _exposed(c):
        port, _, proto = key.partition("/")
        first, _, last = port.partition("-")
        out += [(p, proto or "tcp") for p in range(int(first), int(last or first) + 1)]
    return out


def _ports_match(specs: list[str], ports: list[tuple[int, str]]) -> bool:
    """publish= / expose= values: "80", "80/tcp", "8000-8080/udp"."""
    for spec in specs:
        port, _, proto = spec.partition("/")
        first, _, last = port.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise InvalidArgument(f"invalid port filter {spec!r}") from None
        if any(lo <= p <= hi and (not proto or proto == t) for p, t in ports):
            return True
    return False


def _networks_of(b: Backend, c: Container) -> set[str]:
    """Names and ids of the networks a container is on."""
    nets = b.networks.settings(c.id, _network(c), [])["Networks"]
    return set(nets) | {n["NetworkID"] for n in nets.values()}


def _network(c: Container) -> str:
    mode = c.host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def _name_matches(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, "/" + name) is not None
    except re.error:
        return pattern in name


def _label_matches(spec: str, labels: dict[str, str]) -> bool:
    key, sep, value = spec.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _ancestor(term: str) -> Callable[[Container], bool]:
    try:
        full = normalise(term)[0]
    except rt.InvalidArgument:
        full = None
    image_id = term if term.startswith("sha256:") else "sha256:" + term

    def matches(c: Container) -> bool:
        return c.image == term or c.image_ref == full or c.image_id.startswith(image_id)
    return matches
