from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from runtime.client import logs
from runtime.client.logs import LogRecord, follow, parse, parse_line, parse_timestamp
from runtime.errors import InvalidArgument

T0 = 1_764_338_000_000_000_000  # 2025-11-28T13:53:20Z


def ts(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}+00:00"


def line(ns: int, stream: str, tag: str, content: str) -> bytes:
    return f"{ts(ns)} {stream} {tag} {content}\n".encode()


async def collect(it) -> list[LogRecord]:
    return [r async for r in it]


def test_timestamps() -> None:
    assert parse_timestamp("2025-11-28T13:53:20Z") == T0
    assert parse_timestamp("2025-11-28T13:53:20.5Z") == T0 + 500_000_000
    assert parse_timestamp(b"2025-11-28T13:53:20.000000001+00:00") == T0 + 1
    assert parse_timestamp("2025-11-28T15:53:20.123456789+02:00") == T0 + 123_456_789
    assert parse_timestamp("2025-11-28T12:23:20-01:30") == T0
    with pytest.raises(InvalidArgument):
        parse_timestamp("yesterday")


def test_parse_lines() -> None:
    r = parse_line(b"2025-11-28T13:53:20.000000007+00:00 stderr F oops: a b  c")
    assert r == LogRecord(ts=T0 + 7, stream="stderr", data=b"oops: a b  c\n", partial=False)
    # An empty line: conmon writes the separator space and nothing after it.
    assert parse_line(b"2025-11-28T13:53:20Z stdout F ").data == b"\n"
    assert parse_line(b"2025-11-28T13:53:20Z stdout F").data == b"\n"
    with pytest.raises(InvalidArgument):
        parse_line(b"2025-11-28T13:53:20Z stdin F x")
    with pytest.raises(InvalidArgument):
        parse_line(b"2025-11-28T13:53:20Z stdout X x")


def test_partial_lines_join_back() -> None:
    data = (line(T0, "stdout", "P", "hel") + line(T0 + 1, "stderr", "F", "err")
            + line(T0 + 2, "stdout", "P", "lo ") + line(T0 + 3, "stdout", "F", "world")
            + line(T0 + 4, "stdout", "P", "no newline at exit") + b"2025-11-28T13:53:20Z stdout F torn")
    records = parse(data)
    assert [r.partial for r in records] == [True, False, True, False, True]
    out = b"".join(r.data for r in records if r.stream == "stdout")
    assert out == b"hello world\nno newline at exit"
    assert b"".join(r.data for r in records if r.stream == "stderr") == b"err\n"


@pytest.fixture
def logfile(tmp_path: Path) -> Path:
    p = tmp_path / "ctr.log"
    p.write_bytes(
        line(T0, "stdout", "F", "one")
        + line(T0 + 10, "stderr", "F", "two")
        + line(T0 + 20, "stdout", "P", "thr")
        + line(T0 + 30, "stdout", "P", "e")
        + line(T0 + 40, "stdout", "F", "e")
        + line(T0 + 50, "stdout", "F", "four")
    )
    return p


async def test_read_whole_file(logfile: Path) -> None:
    records = await collect(follow(str(logfile)))
    assert b"".join(r.data for r in records) == b"one\ntwo\nthree\nfour\n"
    assert [r.ts - T0 for r in records] == [0, 10, 20, 30, 40, 50]


@pytest.mark.parametrize("n, expect", [
    (0, b""),
    (1, b"four\n"),
    (2, b"three\nfour\n"),  # the P P F chain is one line
    (3, b"two\nthree\nfour\n"),
    (4, b"one\ntwo\nthree\nfour\n"),
    (100, b"one\ntwo\nthree\nfour\n"),
])
async def test_tail(logfile: Path, n: int, expect: bytes) -> None:
    assert b"".join(r.data for r in await collect(follow(str(logfile), tail=n))) == expect


async def test_tail_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_TAIL_BLOCK", 64)  # lines straddle many blocks
    p = tmp_path / "big.log"
    body = b"".join(line(T0 + i, "stdout", "P" if i % 3 == 0 else "F", f"l{i}") for i in range(300))
    p.write_bytes(body + b"2025-11-28T13:53:20Z stdout F being writ")
    everything = parse(body)
    for n in (1, 5, 50, 199, 200, 201, 1000):
        got = await collect(follow(str(p), tail=n))
        # 300 records, every third one partial: 200 logical lines.
        joined = b"".join(r.data for r in got).split(b"\n")[:-1]
        want = b"".join(r.data for r in everything).split(b"\n")[:-1]
        assert joined == want[-n:]
    assert await collect(follow(str(p), tail=0)) == []


async def test_since_until(logfile: Path) -> None:
    got = await collect(follow(str(logfile), since=T0 + 10, until=T0 + 30))
    assert [r.data for r in got] == [b"two\n", b"thr", b"e"]
    got = await collect(follow(str(logfile), tail=2, since=T0 + 45))
    assert [r.data for r in got] == [b"four\n"]


async def test_missing_file_without_follow(tmp_path: Path) -> None:
    assert await collect(follow(str(tmp_path / "nope.log"))) == []


async def test_follow_picks_up_appended_lines(tmp_path: Path) -> None:
    p = tmp_path / "later.log"
    stop = asyncio.Event()
    got: list[LogRecord] = []

    async def reader() -> None:
        async for r in follow(str(p), follow=True, stop=stop, poll_interval=0.01):
            got.append(r)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)  # the file does not exist yet
    with p.open("ab") as f:
        f.write(line(T0, "stdout", "F", "a"))
        f.flush()
        await asyncio.sleep(0.05)
        assert [r.data for r in got] == [b"a\n"]
        # A line written in two pieces is reported once, whole.
        f.write(line(T0 + 1, "stderr", "F", "b")[:20])
        f.flush()
        await asyncio.sleep(0.05)
        assert len(got) == 1
        f.write(line(T0 + 1, "stderr", "F", "b")[20:] + line(T0 + 2, "stdout", "F", "c"))
    # Set right after the last write: what was written before stop is still delivered.
    stop.set()
    await asyncio.wait_for(task, 2)
    assert [(r.stream, r.data) for r in got] == [("stdout", b"a\n"), ("stderr", b"b\n"), ("stdout", b"c\n")]


async def test_follow_with_tail_then_new_lines(logfile: Path) -> None:
    stop = asyncio.Event()
    it = follow(str(logfile), tail=1, follow=True, stop=stop, poll_interval=0.01)
    first = await anext(it)
    assert first.data == b"four\n"
    with logfile.open("ab") as f:
        f.write(line(T0 + 60, "stdout", "F", "five"))
    assert (await asyncio.wait_for(anext(it), 2)).data == b"five\n"
    stop.set()
    assert await collect(it) == []


async def test_follow_stops_at_until(logfile: Path) -> None:
    # `until` in the past: the file is read, then following ends instead of waiting.
    got = await asyncio.wait_for(collect(follow(str(logfile), follow=True, until=T0 + 15)), 2)
    assert [r.data for r in got] == [b"one\n", b"two\n"]
