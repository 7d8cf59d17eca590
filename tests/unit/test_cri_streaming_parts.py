"""Pieces of the CRI streaming server that need no connection: tokens, resize decoding, Status."""
from __future__ import annotations

import json

from runtime.cri.streaming.backend import ExecRequest, TerminalSize
from runtime.cri.streaming.remotecommand import (SUCCESS, encode_status, exit_status,
                                                 expected_stream_types, internal_error,
                                                 terminal_sizes)
from runtime.cri.streaming.server import TokenCache


def test_tokens_are_random_single_use_and_bounded() -> None:
    cache = TokenCache(ttl=60, limit=3)
    requests = [ExecRequest("c", [str(i)]) for i in range(4)]
    tokens = [cache.insert(r) for r in requests]
    assert len(set(tokens)) == 4 and all(len(t) >= 8 for t in tokens)
    assert cache.consume(tokens[0]) is None  # the oldest made room for the fourth
    assert cache.consume(tokens[3]) is requests[3]
    assert cache.consume(tokens[3]) is None


def test_tokens_expire() -> None:
    cache = TokenCache(ttl=-1)
    assert cache.consume(cache.insert(ExecRequest("c", ["x"]))) is None


class _Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    async def read(self, n: int = 65536) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


async def test_resize_messages_split_and_joined_across_reads() -> None:
    source = _Chunks(b'{"Width":80,"Hei', b'ght":24}{"Width":100,"Height":50}\n',
                     b'  {"Width":1,"Height":2}')
    sizes = [s async for s in terminal_sizes(source)]
    assert sizes == [TerminalSize(80, 24), TerminalSize(100, 50), TerminalSize(1, 2)]


def test_status_wire_forms() -> None:
    assert encode_status(SUCCESS, True) == b'{"metadata":{},"status":"Success"}'
    assert encode_status(SUCCESS, False) == b""
    failure = exit_status(2, ["ls", "/x"])
    assert json.loads(encode_status(failure, True)) == failure
    assert encode_status(failure, False) == (
        b"command terminated with non-zero exit code: error executing command [ls /x], exit code 2")
    err = internal_error(RuntimeError("no such container"))
    assert err["code"] == 500 and err["reason"] == "InternalError"


def test_expected_streams_follow_the_request_and_protocol() -> None:
    tty = ExecRequest("c", ["sh"], tty=True, stdin=True, stderr=False)
    assert expected_stream_types(tty, "v4.channel.k8s.io") == {"error", "stdin", "stdout",
                                                               "resize"}
    assert expected_stream_types(tty, "v2.channel.k8s.io") == {"error", "stdin", "stdout"}
    plain = ExecRequest("c", ["ls"])
    assert expected_stream_types(plain, "v4.channel.k8s.io") == {"error", "stdout", "stderr"}
