"""The CRI streaming server: one-time URLs for exec, attach and port-forward, served over HTTP.

The CRI's Exec/Attach/PortForward calls only hand out a URL (get_exec & co.); kubelet or crictl
then connect to it and upgrade the connection to SPDY/3.1 (or a websocket for exec/attach), and
the bytes flow between the client's streams and the backend.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from runtime.cri.streaming import portforward, remotecommand, ws
from runtime.cri.streaming.backend import (AttachRequest, ExecRequest, PortForwardRequest,
                                           StreamingBackend)
from runtime.cri.streaming.spdy_connection import SpdyConnection

log = logging.getLogger(__name__)

# kubelet's request cache keeps a token for one minute.
TOKEN_TTL = 60.0
MAX_PENDING = 1000

Request = ExecRequest | AttachRequest | PortForwardRequest


class InvalidStreamingRequest(ValueError):
    """A request the CRI must refuse (InvalidArgument)."""


@dataclass
class _Pending:
    request: Request
    expires: float


class TokenCache:
    """Random single-use tokens that expire; the oldest are dropped when too many are pending."""

    def __init__(self, ttl: float = TOKEN_TTL, limit: int = MAX_PENDING) -> None:
        self._ttl = ttl
        self._limit = limit
        self._pending: dict[str, _Pending] = {}

    def insert(self, request: Request) -> str:
        self._evict()
        if len(self._pending) >= self._limit:
            del self._pending[next(iter(self._pending))]
        token = secrets.token_urlsafe(6)
        while token in self._pending:
            token = secrets.token_urlsafe(6)
        self._pending[token] = _Pending(request, time.monotonic() + self._ttl)
        return token

    def consume(self, token: str) -> Request | None:
        entry = self._pending.pop(token, None)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry.request

    def _evict(self) -> None:
        now = time.monotonic()
        for token in [t for t, e in self._pending.items() if e.expires < now]:
            del self._pending[token]


class _UpgradedStream:
    """Bytes of an upgraded aiohttp connection: the parser hook feeds a StreamReader and writes
    go straight to the transport."""

    def __init__(self, request: web.Request) -> None:
        self.reader = asyncio.StreamReader()
        self._protocol = request.protocol
        self._transport = request.transport
        # aiohttp types the hook as its websocket reader; it only calls feed_data and feed_eof.
        self._protocol.set_parser(self)  # type: ignore[arg-type]

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        self._transport.write(data)

    async def drain(self) -> None:
        # aiohttp's protocol implements the same write flow control asyncio's streams use.
        await self._protocol._drain_helper()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _client_protocols(request: web.Request) -> list[str]:
    return [p.strip() for h in request.headers.getall("X-Stream-Protocol-Version", [])
            for p in h.split(",") if p.strip()]


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _upgrade_spdy(request: web.Request, supported: tuple[str, ...],
                        default: str | None) -> tuple[str, SpdyConnection, web.StreamResponse]:
    """Answer 101 with the negotiated protocol; the SPDY connection over what follows."""
    connection = [t.strip().lower() for t in request.headers.get("Connection", "").split(",")]
    if "upgrade" not in connection or request.headers.get("Upgrade", "").lower() != "spdy/3.1":
        raise web.HTTPBadRequest(text="Upgrade request required")
    offered = _client_protocols(request)
    protocol = next((p for p in offered if p in supported), None)
    if protocol is None and not offered and default is not None:
        protocol = default
    if protocol is None:
        raise web.HTTPForbidden(
            text=f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
                 f"server supports {list(supported)}",
            headers={"X-Accepted-Stream-Protocol-Versions": ", ".join(supported)})
    response = web.StreamResponse(status=101, headers={
        "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": protocol})
    await response.prepare(request)
    await response.write_eof()
    upgraded = _UpgradedStream(request)
    return protocol, SpdyConnection(upgraded.reader, upgraded, server=True), response


class StreamingServer:
    def __init__(self, backend: StreamingBackend, host: str = "127.0.0.1", port: int = 0,
                 token_ttl: float = TOKEN_TTL) -> None:
        self._backend = backend
        self._host = host
        self._port = port
        self._tokens = TokenCache(token_ttl)
        self._runner: web.AppRunner | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.address = ""

    async def start(self) -> None:
        app = web.Application()
        for kind in ("exec", "attach", "portforward"):
            app.router.add_route("GET", f"/{kind}/{{token}}", self._handle)
            app.router.add_route("POST", f"/{kind}/{{token}}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def stop(self) -> None:
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def get_exec(self, request: ExecRequest) -> str:
        if not request.cmd:
            raise InvalidStreamingRequest("cmd must not be empty")
        self._check_stdio(request)
        return self._url("exec", request)

    def get_attach(self, request: AttachRequest) -> str:
        self._check_stdio(request)
        return self._url("attach", request)

    def get_port_forward(self, request: PortForwardRequest) -> str:
        if not request.sandbox_id:
            raise InvalidStreamingRequest("pod sandbox id must not be empty")
        bad = [p for p in request.ports if not 0 < p < 65536]
        if bad:
            raise InvalidStreamingRequest(f"invalid port(s) {bad}")
        return self._url("portforward", request)

    @staticmethod
    def _check_stdio(request: ExecRequest | AttachRequest) -> None:
        if not request.container_id:
            raise InvalidStreamingRequest("container id must not be empty")
        if request.tty and request.stderr:
            raise InvalidStreamingRequest("tty and stderr cannot both be true")
        if not (request.stdin or request.stdout or request.stderr):
            raise InvalidStreamingRequest("one of stdin, stdout, or stderr must be set")

    def _url(self, kind: str, request: Request) -> str:
        if not self.address:
            raise RuntimeError("the streaming server is not started")
        return f"http://{self.address}/{kind}/{self._tokens.insert(request)}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        kind = request.path.split("/")[1]
        pending = self._tokens.consume(request.match_info["token"])
        if pending is None:
            raise web.HTTPNotFound(text="token not found or expired")
        wanted = {"exec": ExecRequest, "attach": AttachRequest,
                  "portforward": PortForwardRequest}[kind]
        if not isinstance(pending, wanted):
            raise web.HTTPBadRequest(text=f"token is not for {kind}")
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            return await self._serve(request, pending)
        finally:
            self._sessions.discard(task)

    async def _serve(self, request: web.Request, pending: Request) -> web.StreamResponse:
        if isinstance(pending, PortForwardRequest):
            if _is_websocket(request):
                raise web.HTTPBadRequest(text="port-forward over websocket is not supported")
            _, conn, response = await _upgrade_spdy(request, (portforward.PROTOCOL,),
                                                    portforward.PROTOCOL)
            await portforward.serve_spdy(conn, pending, self._backend)
            return response
        if _is_websocket(request):
            return await ws.serve(request, pending, self._backend)
        protocol, conn, response = await _upgrade_spdy(request, remotecommand.PROTOCOLS, None)
        await remotecommand.serve_spdy(conn, protocol, pending, self._backend)
        return response
