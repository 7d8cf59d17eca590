"""The CRI streaming server driven by our own SPDY client and aiohttp's websocket client:
remotecommand v4/v3/v2 over SPDY, v5/v4 over websocket, port-forward, one-time tokens."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from runtime.cri.streaming import remotecommand, spdy
from runtime.cri.streaming.backend import AttachRequest, ExecRequest, PortForwardRequest
from runtime.cri.streaming.server import InvalidStreamingRequest, StreamingServer
from runtime.cri.streaming.spdy_connection import SpdyConnection, StreamReset
from tests.fixtures.cri_streaming import HostBackend, http_status, spdy_connect

SUCCESS = {"metadata": {}, "status": "Success"}


@pytest.fixture
async def server() -> AsyncIterator[tuple[StreamingServer, HostBackend]]:
    backend = HostBackend()
    s = StreamingServer(backend)
    await s.start()
    try:
        yield s, backend
    finally:
        await s.stop()


async def _open(conn: SpdyConnection, *kinds: str) -> dict[str, object]:
    return {k: await conn.open_stream({"streamtype": [k]}) for k in kinds}


async def test_exec_v4_success_and_failure_status(server) -> None:
    s, _ = server
    url = s.get_exec(ExecRequest("c1", ["sh", "-c", "cat; echo oops >&2"], stdin=True))
    assert url.startswith(f"http://{s.address}/exec/")
    conn, proto, reader = await spdy_connect(url, ["v4.channel.k8s.io", "v3.channel.k8s.io"])
    assert proto == "v4.channel.k8s.io"
    st = await _open(conn, "error", "stdin", "stdout", "stderr")
    await st["stdin"].write(b"data\n" * 1000)
    await st["stdin"].close()
    out, err, status = await asyncio.gather(st["stdout"].read_all(), st["stderr"].read_all(),
                                            st["error"].read_all())
    assert (out, err) == (b"data\n" * 1000, b"oops\n")
    assert json.loads(status) == SUCCESS
    conn.close()
    await reader

    url = s.get_exec(ExecRequest("c1", ["sh", "-c", "exit 42"]))
    conn, _, reader = await spdy_connect(url, ["v4.channel.k8s.io"])
    st = await _open(conn, "error", "stdout", "stderr")
    assert json.loads(await st["error"].read_all()) == {
        "metadata": {}, "status": "Failure",
        "message": "command terminated with non-zero exit code: "
                   "error executing command [sh -c exit 42], exit code 42",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "42"}]}}
    conn.close()
    await reader


async def test_exec_v2_reports_errors_as_text(server) -> None:
    s, _ = server
    for cmd, expected in ((["true"], b""), (["sh", "-c", "exit 3"], b"exit code 3")):
        conn, proto, reader = await spdy_connect(s.get_exec(ExecRequest("c", cmd)),
                                                 ["v2.channel.k8s.io"])
        assert proto == "v2.channel.k8s.io"
        st = await _open(conn, "error", "stdout", "stderr")
        text = await st["error"].read_all()
        assert text.endswith(expected) and (expected or text == b"")
        conn.close()
        await reader


async def test_exec_tty_applies_resizes(server) -> None:
    s, backend = server
    url = s.get_exec(ExecRequest("c", ["sh", "-c", "read x; stty size"], tty=True, stdin=True,
                                 stderr=False))
    conn, _, reader = await spdy_connect(url, ["v4.channel.k8s.io"])
    st = await _open(conn, "error", "stdin", "stdout", "resize")
    await st["resize"].write(b'{"Width":100,"Height":30}')
    await st["resize"].write(b'{"Width":132,"Height":43}\n')
    while len(backend.sizes) < 2:
        await conn.ping()
    await st["stdin"].write(b"go\r")
    out, status = await asyncio.gather(st["stdout"].read_all(), st["error"].read_all())
    assert b"43 132" in out
    assert json.loads(status) == SUCCESS
    assert [(z.width, z.height) for z in backend.sizes] == [(100, 30), (132, 43)]
    conn.close()
    await reader


async def test_attach(server) -> None:
    s, backend = server
    backend.attach_commands["main"] = ["sh", "-c", "read l; echo attached-$l"]
    conn, _, reader = await spdy_connect(
        s.get_attach(AttachRequest("main", stdin=True, stderr=False)), ["v4.channel.k8s.io"])
    st = await _open(conn, "error", "stdin", "stdout")
    await st["stdin"].write(b"yes\n")
    out, status = await asyncio.gather(st["stdout"].read_all(), st["error"].read_all())
    assert out == b"attached-yes\n" and json.loads(status) == SUCCESS
    conn.close()
    await reader


async def test_client_hangup_cancels_the_command(server) -> None:
    s, _ = server
    conn, _, reader = await spdy_connect(
        s.get_exec(ExecRequest("c", ["sh", "-c", "echo started; exec sleep 600"])),
        ["v4.channel.k8s.io"])
    st = await _open(conn, "error", "stdout", "stderr")
    assert await st["stdout"].read() == b"started\n"
    conn.close()
    await reader
    # stop() would wait on a session still running its command; it returns once all are gone.
    for _ in range(200):
        if not s._sessions:
            break
        await asyncio.sleep(0.05)
    assert not s._sessions


async def test_tokens_are_single_use_and_checked(server) -> None:
    s, _ = server
    url = s.get_exec(ExecRequest("c", ["true"]))
    conn, _, reader = await spdy_connect(url, ["v4.channel.k8s.io"])
    await _open(conn, "error", "stdout", "stderr")
    conn.close()
    await reader
    upgrade = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
               "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
    assert await http_status(url, upgrade) == 404
    assert await http_status(f"http://{s.address}/exec/nosuchtoken", upgrade) == 404
    attach_token = s.get_attach(AttachRequest("c")).rsplit("/", 1)[1]
    assert await http_status(f"http://{s.address}/exec/{attach_token}", upgrade) == 400
    assert await http_status(s.get_exec(ExecRequest("c", ["true"])), {}) == 400
    assert await http_status(s.get_exec(ExecRequest("c", ["true"])),
                             {**upgrade, "X-Stream-Protocol-Version": "v9.channel.k8s.io"}) == 403


async def test_tokens_expire() -> None:
    s = StreamingServer(HostBackend(), token_ttl=0)
    await s.start()
    try:
        url = s.get_exec(ExecRequest("c", ["true"]))
        await asyncio.sleep(0.01)
        with pytest.raises(ConnectionRefusedError, match="404"):
            await spdy_connect(url, ["v4.channel.k8s.io"])
    finally:
        await s.stop()


async def test_requests_are_validated(server) -> None:
    s, _ = server
    with pytest.raises(InvalidStreamingRequest):
        s.get_exec(ExecRequest("c", []))
    with pytest.raises(InvalidStreamingRequest):
        s.get_exec(ExecRequest("c", ["sh"], tty=True, stderr=True))
    with pytest.raises(InvalidStreamingRequest):
        s.get_attach(AttachRequest("c", stdout=False, stderr=False))
    with pytest.raises(InvalidStreamingRequest):
        s.get_port_forward(PortForwardRequest("p", [70000]))


async def _ws_collect(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    got: dict[int, bytes] = {}
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.BINARY:
            got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
    return got


async def test_websocket_v5_with_stdin_close(server) -> None:
    s, _ = server
    url = s.get_exec(ExecRequest("c", ["sh", "-c", "cat; echo e >&2; exit 5"], stdin=True))
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            first = await ws.receive_bytes()
            assert first == b"\x01"
            await ws.send_bytes(b"\x00" + b"over websocket\n")
            await ws.send_bytes(b"\xff\x00")
            got = await _ws_collect(ws)
    assert got[1] == b"over websocket\n" and got[2] == b"e\n"
    status = json.loads(got[3])
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]


async def test_websocket_v4_output_only(server) -> None:
    s, _ = server
    url = s.get_exec(ExecRequest("c", ["echo", "hi"], stderr=False))
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            got = await _ws_collect(ws)
    assert got[1] == b"hi\n" and json.loads(got[3]) == SUCCESS


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(echo, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


async def test_port_forward(server) -> None:
    s, backend = server
    echo, port = await _echo_server()
    try:
        url = s.get_port_forward(PortForwardRequest("pod"))
        conn, proto, reader = await spdy_connect(url, ["portforward.k8s.io"])
        assert proto == "portforward.k8s.io"
        for request_id in ("0", "1"):
            headers = {"port": [str(port)], "requestid": [request_id]}
            error = await conn.open_stream({**headers, "streamtype": ["error"]})
            await error.close()
            data = await conn.open_stream({**headers, "streamtype": ["data"]})
            await data.write(b"abc" * 100000)
            await data.close()
            assert await data.read_all() == b"abc" * 100000
            assert await error.read_all() == b""
        bad = {"port": ["1"], "requestid": ["2"]}
        error = await conn.open_stream({**bad, "streamtype": ["error"]})
        await conn.open_stream({**bad, "streamtype": ["data"]})
        assert b"error forwarding port 1 to pod pod" in await error.read_all()
        assert backend.forwarded == [("pod", port), ("pod", port), ("pod", 1)]
        conn.close()
        await reader
    finally:
        echo.close()
        await echo.wait_closed()


async def test_port_forward_refuses_ports_not_requested(server) -> None:
    s, backend = server
    conn, _, reader = await spdy_connect(s.get_port_forward(PortForwardRequest("pod", [80])),
                                         ["portforward.k8s.io"])
    headers = {"port": ["81"], "requestid": ["0"]}
    error = await conn.open_stream({**headers, "streamtype": ["error"]})
    await conn.open_stream({**headers, "streamtype": ["data"]})
    assert b"port 81 was not requested" in await error.read_all()
    assert backend.forwarded == []
    with pytest.raises(StreamReset, match=f"status {spdy.REFUSED_STREAM}"):
        await conn.open_stream({"streamtype": ["bogus"], "requestid": ["1"]})
    conn.close()
    await reader


async def test_unknown_and_late_streams_are_refused_and_idle_clients_dropped(
        server, monkeypatch: pytest.MonkeyPatch) -> None:
    s, _ = server
    monkeypatch.setattr(remotecommand, "HANGUP_GRACE", 0.2)
    conn, _, reader = await spdy_connect(
        s.get_exec(ExecRequest("c", ["sh", "-c", "read x; echo $x"], stdin=True, stderr=False)),
        ["v4.channel.k8s.io"])
    with pytest.raises(StreamReset):
        await conn.open_stream({"streamtype": ["bogus"]})
    st = await _open(conn, "error", "stdin", "stdout")
    with pytest.raises(StreamReset):
        await conn.open_stream({"streamtype": ["stderr"]})
    await st["stdin"].write(b"late\n")
    assert await st["stdout"].read_all() == b"late\n"
    assert json.loads(await st["error"].read_all()) == SUCCESS
    # we never hang up: the server says GOAWAY and closes the connection itself
    await asyncio.wait_for(reader, 10)
    assert conn.going_away
