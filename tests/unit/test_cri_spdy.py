"""SPDY/3.1 framing and connection (runtime/cri/streaming/spdy.py, spdy_connection.py)."""
from __future__ import annotations

import asyncio
import socket
import struct
import zlib
from collections.abc import AsyncIterator

import pytest

from runtime.cri.streaming import spdy
from runtime.cri.streaming.spdy_connection import CHUNK, MAX_UNREAD, SpdyConnection, StreamReset


def roundtrip(frame: spdy.Frame) -> spdy.Frame | None:
    wire = spdy.encode_frame(frame, spdy.HeaderCompressor())
    return spdy.decode_frame(wire[:8], wire[8:], spdy.HeaderDecompressor())


def test_dictionary_is_spdy3s() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version" in spdy.DICTIONARY
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


def test_header_block_names_the_dictionary() -> None:
    block = spdy.HeaderCompressor().compress({"streamtype": ["error"]})
    cmf, flg = block[0], block[1]
    assert flg & 0x20, "FDICT must be set"
    assert (cmf * 256 + flg) % 31 == 0
    assert struct.unpack(">I", block[2:6])[0] == zlib.adler32(spdy.DICTIONARY)
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(block)


def test_header_blocks_share_one_zlib_stream_per_direction() -> None:
    tx, rx = spdy.HeaderCompressor(), spdy.HeaderDecompressor()
    headers = {"streamtype": ["stdout"], "port": ["8080"], "requestid": ["0"]}
    first, second = tx.compress(headers), tx.compress(headers)
    assert len(second) < len(first)
    assert rx.decompress(first) == headers
    assert rx.decompress(second) == headers
    with pytest.raises(spdy.SpdyProtocolError):
        spdy.HeaderDecompressor().decompress(second)


def test_header_block_encoding() -> None:
    raw = spdy.encode_header_block({"StreamType": ["error"], "x": ["a", "b"]})
    assert raw == (b"\x00\x00\x00\x02" + b"\x00\x00\x00\x0astreamtype\x00\x00\x00\x05error"
                   + b"\x00\x00\x00\x01x\x00\x00\x00\x03a\x00b")
    assert spdy.decode_header_block(raw) == {"streamtype": ["error"], "x": ["a", "b"]}
    with pytest.raises(spdy.SpdyProtocolError):
        spdy.decode_header_block(raw[:-1])


@pytest.mark.parametrize("frame", [
    spdy.DataFrame(5, b"payload", spdy.FLAG_FIN),
    spdy.DataFrame(7, b""),
    spdy.SynStream(1, {"streamtype": ["stdin"]}, spdy.FLAG_FIN | spdy.FLAG_UNIDIRECTIONAL,
                   associated_id=0, priority=3, slot=0),
    spdy.SynReply(3, {}, spdy.FLAG_FIN),
    spdy.HeadersFrame(3, {"a": ["b"]}),
    spdy.RstStream(9, spdy.CANCEL),
    spdy.Settings({spdy.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20,
                   spdy.SETTINGS_MAX_CONCURRENT_STREAMS: 100}),
    spdy.Ping(17),
    spdy.GoAway(11, spdy.GOAWAY_PROTOCOL_ERROR),
    spdy.WindowUpdate(0, 4096),
    spdy.WindowUpdate(3, spdy.MAX_WINDOW),
])
def test_frames_round_trip(frame: spdy.Frame) -> None:
    assert roundtrip(frame) == frame


def test_wire_layout() -> None:
    syn = spdy.encode_frame(spdy.SynStream(1, {}, spdy.FLAG_FIN | spdy.FLAG_UNIDIRECTIONAL),
                            spdy.HeaderCompressor())
    assert syn[:4] == b"\x80\x03\x00\x01"
    assert syn[4] == 0x03
    assert struct.unpack(">I", syn[4:8])[0] & 0xFFFFFF == len(syn) - 8
    data = spdy.encode_frame(spdy.DataFrame(3, b"abc", spdy.FLAG_FIN))
    assert data == b"\x00\x00\x00\x03\x01\x00\x00\x03abc"
    assert spdy.encode_frame(spdy.WindowUpdate(1, 100)) == (
        b"\x80\x03\x00\x09\x00\x00\x00\x08\x00\x00\x00\x01\x00\x00\x00\x64")
    assert spdy.encode_frame(spdy.Ping(2)) == b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x02"


def test_flags_read_back() -> None:
    syn = roundtrip(spdy.SynStream(1, {}, spdy.FLAG_UNIDIRECTIONAL))
    assert isinstance(syn, spdy.SynStream) and syn.unidirectional and not syn.fin
    data = roundtrip(spdy.DataFrame(1, b"x", spdy.FLAG_FIN))
    assert isinstance(data, spdy.DataFrame) and data.fin


def test_unknown_version_and_ignored_types() -> None:
    with pytest.raises(spdy.SpdyProtocolError):
        spdy.parse_head(b"\x80\x02\x00\x01\x00\x00\x00\x00")
    credential = b"\x80\x03\x00\x0a\x00\x00\x00\x00"
    assert spdy.decode_frame(credential, b"", spdy.HeaderDecompressor()) is None


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SpdyConnection, SpdyConnection]]:
    a, b = socket.socketpair()
    ra, wa = await asyncio.open_connection(sock=a)
    rb, wb = await asyncio.open_connection(sock=b)
    server = SpdyConnection(ra, wa, server=True)
    client = SpdyConnection(rb, wb, server=False)
    tasks = [asyncio.create_task(server.serve()), asyncio.create_task(client.serve())]
    try:
        yield server, client
    finally:
        server.close()
        client.close()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _accept_and_reply(server: SpdyConnection) -> spdy.Frame:
    stream = await server.accept()
    assert stream is not None
    await stream.reply()
    return stream  # type: ignore[return-value]


async def test_streams_carry_data_both_ways_and_half_close(pair) -> None:
    server, client = pair
    accepted = asyncio.create_task(_accept_and_reply(server))
    cstream = await client.open_stream({"streamtype": ["stdin"]})
    sstream = await accepted
    assert sstream.header("StreamType") == "stdin" and sstream.id == 1
    await cstream.write(b"hello")
    await cstream.close()
    assert await sstream.read_all() == b"hello"
    await sstream.write(b"world" * 50000)
    await sstream.close()
    assert await cstream.read_all() == b"world" * 50000
    assert cstream.closed and sstream.closed
    with pytest.raises(StreamReset):
        await sstream.write(b"late")
    second = asyncio.create_task(_accept_and_reply(server))
    assert (await client.open_stream({})).id == 3
    await second


async def test_syn_stream_flags(pair) -> None:
    server, client = pair
    accepted = asyncio.create_task(server.accept())
    client_side = client.streams
    await client._send(spdy.SynStream(1, {"a": ["1"]}, spdy.FLAG_FIN | spdy.FLAG_UNIDIRECTIONAL))
    stream = await accepted
    assert stream is not None and stream.remote_closed and stream.local_closed
    assert await stream.read() == b""
    with pytest.raises(StreamReset):
        await stream.write(b"x")
    assert client_side == {}


async def test_reset_ends_reads_and_refuses_writes(pair) -> None:
    server, client = pair
    accepted = asyncio.create_task(_accept_and_reply(server))
    cstream = await client.open_stream({})
    sstream = await accepted
    reading = asyncio.create_task(sstream.read())
    await cstream.reset(spdy.CANCEL)
    assert await reading == b""
    assert sstream.reset_status == spdy.CANCEL
    with pytest.raises(StreamReset):
        await sstream.write(b"x")


async def test_refused_open_raises(pair) -> None:
    server, client = pair

    async def refuse() -> None:
        stream = await server.accept()
        assert stream is not None
        await stream.reset(spdy.REFUSED_STREAM)

    refusing = asyncio.create_task(refuse())
    with pytest.raises(StreamReset):
        await client.open_stream({})
    await refusing


async def test_stream_ids_from_the_wrong_side_are_refused(pair) -> None:
    server, client = pair
    client.streams[2] = placeholder = type("S", (), {"_on_reset": lambda self, s: setattr(
        self, "status", s)})()
    await client._send(spdy.SynStream(2, {}))
    await client.ping()
    assert getattr(placeholder, "status", None) == spdy.PROTOCOL_ERROR
    assert server.streams == {}


async def test_ping_is_echoed(pair) -> None:
    server, client = pair
    await asyncio.wait_for(client.ping(), 5)
    await asyncio.wait_for(server.ping(), 5)


async def test_goaway_ends_accept(pair) -> None:
    server, client = pair
    await client.goaway()
    assert await server.accept() is None
    assert server.going_away


async def test_window_updates_bind_a_peer_that_does_flow_control(pair) -> None:
    server, client = pair
    await client.settings({spdy.SETTINGS_INITIAL_WINDOW_SIZE: 1000})
    await client.ping()
    assert server.peer_flow_control and server.peer_initial_window == 1000
    accepted = asyncio.create_task(_accept_and_reply(server))
    cstream = await client.open_stream({})
    sstream = await accepted
    assert sstream.send_window == 1000
    writing = asyncio.create_task(sstream.write(b"z" * 5000))
    await client.ping()
    assert not writing.done()
    assert sstream.send_window == 0
    got = b""
    while len(got) < 5000:
        got += await cstream.read()
    await asyncio.wait_for(writing, 5)
    assert got == b"z" * 5000
    # the reader granted the window back as it consumed (half a window at a time)
    assert sstream.send_window >= 0 and server.send_window > spdy.DEFAULT_WINDOW - 5000


async def test_peer_without_flow_control_is_not_held_to_a_window(pair) -> None:
    server, client = pair
    accepted = asyncio.create_task(_accept_and_reply(server))
    cstream = await client.open_stream({})
    sstream = await accepted
    await asyncio.wait_for(sstream.write(b"q" * (3 * spdy.DEFAULT_WINDOW)), 5)
    assert not server.peer_flow_control
    await sstream.close()
    assert len(await cstream.read_all()) == 3 * spdy.DEFAULT_WINDOW


async def test_connection_window_update(pair) -> None:
    server, client = pair
    server.peer_flow_control = True
    server.send_window = 10
    accepted = asyncio.create_task(_accept_and_reply(server))
    cstream = await client.open_stream({})
    sstream = await accepted
    writing = asyncio.create_task(sstream.write(b"k" * 30))
    assert await cstream.read() == b"k" * 10
    assert not writing.done()
    await client._send(spdy.WindowUpdate(0, 100))
    await asyncio.wait_for(writing, 5)
    assert await cstream.read() == b"k" * 20


async def test_connection_loss_resets_streams(pair) -> None:
    server, client = pair
    accepted = asyncio.create_task(_accept_and_reply(server))
    await client.open_stream({})
    sstream = await accepted
    client.close()
    assert await sstream.read() == b""
    await asyncio.wait_for(server.closed.wait(), 5)
    assert await server.accept() is None


async def test_unread_data_is_bounded_then_flows(pair) -> None:
    server, client = pair
    accepted = asyncio.create_task(_accept_and_reply(server))
    cstream = await client.open_stream({})
    sstream = await accepted
    total = 4 * MAX_UNREAD

    async def send() -> None:
        await cstream.write(b"u" * total)
        await cstream.close()

    sending = asyncio.create_task(send())
    while len(sstream._buf) < MAX_UNREAD:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert len(sstream._buf) <= MAX_UNREAD + CHUNK
    assert not sending.done()
    assert len(await sstream.read_all()) == total
    await sending


async def test_discarded_stream_no_longer_holds_the_connection(pair) -> None:
    server, client = pair
    accepted = asyncio.create_task(_accept_and_reply(server))
    cstream = await client.open_stream({})
    sstream = await accepted
    sending = asyncio.create_task(cstream.write(b"d" * 3 * MAX_UNREAD))
    while len(sstream._buf) < MAX_UNREAD:
        await asyncio.sleep(0.01)
    sstream.discard()
    await asyncio.wait_for(sending, 10)
    await asyncio.wait_for(client.ping(), 10)
    assert not sstream._buf
