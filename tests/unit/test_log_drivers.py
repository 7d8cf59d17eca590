"""The log drivers' pieces on their own: settings, the two formats, rotation, the shipper and the reader."""
from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.logs import attrs, rotation
from engine.logs.jsonfile import JsonFile, go_time
from engine.logs.local import Local
from engine.logs.reader import Query, read
from engine.logs.settings import human_size, resolve
from engine.logs.shipper import MAX_ENTRY, Shipper
from runtime.client.logs import LogRecord, parse_line

T0 = 1_700_000_000 * 10**9


def rec(i: int, data: bytes = b"", stream: str = "stdout", partial: bool = False) -> LogRecord:
    return LogRecord(ts=T0 + i * 10**6, stream=stream, data=data or b"line %d\n" % i, partial=partial)


def k8s(ts: int, stream: str, tag: str, content: bytes) -> bytes:
    seconds, frac = divmod(ts, 10**9)
    stamp = go_time(seconds * 10**9).removesuffix("Z") + f".{frac:09d}+00:00"
    return f"{stamp} {stream} {tag} ".encode() + content + b"\n"


def test_settings() -> None:
    assert resolve(None, "json-file", {}).options == {"max-size": "20m", "max-file": "5"}
    # Inspect shows what was configured, without the engine's own defaults, as dockerd does.
    assert resolve(None, "json-file", {}).configured == {}
    assert resolve({"Type": "json-file"}, "json-file", {"max-size": "2m"}).configured == {"max-size": "2m"}
    s = resolve({"Type": "json-file", "Config": {"max-size": "1m", "max-file": "3"}}, "json-file", {})
    assert (s.max_size, s.max_file, s.compress) == (1_000_000, 3, False)
    assert resolve({"Type": "local"}, "json-file", {"max-size": "1k"}).options == \
        {"max-size": "20m", "max-file": "5", "compress": "true"}
    assert resolve(None, "json-file", {"max-size": "2m"}).options == {"max-size": "2m"}
    assert not resolve({"Type": "none"}, "json-file", {}).readable
    # Every driver takes dockerd's delivery mode (this engine never blocks a container on its driver).
    for driver in ("json-file", "local"):
        opts = {"mode": "non-blocking", "max-buffer-size": "4m"}
        assert resolve({"Type": driver, "Config": opts}, "json-file", {}).options.items() >= opts.items()
    assert human_size("1.5k") == 1500 and human_size("10MB") == 10_000_000 and human_size("7") == 7
    for config, words in (({"Type": "gelfx"}, "no log driver named 'gelfx'"),
                          ({"Config": {"max-sise": "1"}}, "unknown log opt 'max-sise' for json-file"),
                          ({"Type": "none", "Config": {"max-size": "1m"}}, "unknown log opt 'max-size' for none"),
                          ({"Config": {"max-size": "0"}}, "max-size must be a positive number"),
                          ({"Config": {"max-size": "1m", "max-file": "0"}}, "max-file cannot be less than 1"),
                          ({"Config": {"compress": "true", "max-size": "1m"}}, "compress cannot be true"),
                          ({"Type": "local", "Config": {"max-file": "1"}}, "max file count is 1"),
                          ({"Config": {"mode": "lossy"}}, "logging mode not supported: lossy"),
                          ({"Config": {"max-buffer-size": "4m"}}, "only supported with 'mode=non-blocking'"),
                          ({"Config": {"mode": "non-blocking", "max-buffer-size": "lots"}},
                           "error parsing option max-buffer-size"),
                          ({"Type": "none", "Config": {"mode": "blocking"}}, "unknown log opt 'mode' for none"),
                          ({"Config": {"compress": "true"}}, "compress cannot be true"),  # the defaults aside
                          ({"Config": {"tag": "{{.Bogus}}"}}, "can't evaluate field Bogus in type"),
                          ({"Config": {"tag": "x{{"}}, "unclosed action"),
                          ({"Config": {"tag": '{{.Name | printf "%s-x"}}'}}, "is not supported")):
        with pytest.raises(InvalidArgument, match=words):
            resolve(config, "json-file", {})
    # The local driver's max-size 0 is no limit.
    assert resolve({"Type": "local", "Config": {"max-size": "0"}}, "json-file", {}).max_size is None


def test_tag_templates() -> None:
    class C:
        id, name, image, image_id = "ab" * 32, "web", "busybox", "sha256:" + "cd" * 32
        path, args, config = "sh", ["-c", "echo hi"], {}

    assert attrs.render_tag("{{.Name}}/{{ .ID }}|{{.Command}}|{{.ImageID}}|{{.ContainerName}}", C()) == \
        f"web/{'ab' * 6}|sh -c echo hi|{'cd' * 6}|/web"


def test_json_file_lines_are_dockers() -> None:
    line = JsonFile().encode(LogRecord(ts=T0 + 120_000_000, stream="stderr", data=b"<a & b>\xff\n", partial=False))
    assert line == (b'{"log":"\\u003ca \\u0026 b\\u003e\xef\xbf\xbd\\n","stream":"stderr",'
                    b'"time":"2023-11-14T22:13:20.12Z"}\n')
    assert go_time(T0) == "2023-11-14T22:13:20Z"
    tagged = JsonFile({"tag": "x"}).encode(rec(1))
    assert list(json.loads(tagged)) == ["log", "stream", "attrs", "time"]
    records, used = JsonFile.decode(line + b'{"log":"par')
    assert used == len(line) and records[0].data == "<a & b>\ufffd\n".encode() and records[0].stream == "stderr"


@pytest.mark.parametrize("attrs", [None, {"tag": 'a"b\\c'}])
def test_json_file_writes_a_capture_of_whole_lines_as_record_by_record(attrs: dict[str, str] | None) -> None:
    fmt = JsonFile(attrs)
    texts = [b"plain 123", b"", b"  spaced  ", b"~!#$%'()*+,-./:;=?@[]^_`{|}", b'{"json": "a\\"b"}', b"a\\b\\",
             b"<html>&amp;", b"\tat frame\t1", "caf\u00e9 \u2603".encode(), b"\x7f"]
    records_only = [b"\xff", "line\u2028sep".encode(), b"cr\r", b"nul\x00", b"bell\x07"]
    stamps = [T0, T0 + 1, T0 + 120_000_000, T0 + 999_999_999, T0 + 100]
    lines = [k8s(ts, stream, "F", text) for ts in stamps for stream in ("stdout", "stderr")
             for text in texts + records_only]
    lines += [b"2023-11-14T22:13:20.5Z stdout F short fraction\n", b"2023-11-14T22:13:20Z stdout F no fraction\n",
              b"2023-11-14T23:13:20.000000001+01:00 stdout F an offset\n", b"2023-11-14T22:13:20.123456789Z stdout F\n",
              k8s(T0, "stdout", "P", b"part"), b"not a record\n", b"x" + k8s(T0, "stdout", "F", b"prefixed")]
    whole = 0
    for line in lines:
        for capture in (line, k8s(T0, "stdout", "F", b"first") + line):
            fast = fmt.whole_lines(capture)
            if fast is not None:
                whole += 1
                records = [parse_line(one) for one in capture.splitlines()]
                assert fast == b"".join(fmt.encode(rec) for rec in records), capture
                # And read back as they were, the plain ones in one pass, the rest a line at a time.
                assert JsonFile.decode(fast) == (records, len(fast)), capture
    # Made in one go: every text but those left to the encoder, at every stamp on both streams; the stamp without
    # a fraction and the empty line without its space; each alone and after another record.
    assert whole == 2 * (len(texts) * len(stamps) * 2 + 2)
    assert fmt.whole_lines(k8s(T0, "stdout", "F", b"x") + k8s(T0, "stdout", "P", b"y")) is None


@pytest.mark.parametrize("fmt", [JsonFile(), Local()], ids=["json-file", "local"])
def test_tail_and_since_offsets(tmp_path: Path, fmt) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"".join(fmt.encode(rec(i)) for i in range(5000)))
    size = path.stat().st_size
    with open(path, "rb") as f:
        for n in (0, 1, 7, 4999, 5000, 9000):
            f.seek(fmt.tail_offset(f, size, n))
            got = fmt.decode(f.read())[0]
            assert [r.ts for r in got] == [rec(i).ts for i in range(max(0, 5000 - n), 5000)]
        for first in (0, 1, 2500, 4999):
            f.seek(fmt.since_offset(f, size, rec(first).ts))
            got = fmt.decode(f.read())[0]
            assert got[0].ts <= rec(first).ts and got[-1].ts == rec(4999).ts
            assert all(r.ts >= rec(first).ts for r in got[1:])


def test_local_round_trip() -> None:
    records = [rec(1), rec(2, b"partial", partial=True), rec(3, b"err\n", "stderr"), LogRecord(-5, "stdout", b"\n", False)]
    data = b"".join(Local.encode(r) for r in records)
    assert Local.decode(data + data[:7]) == (records, len(data))


def test_rotating_file(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    out = rotation.RotatingFile(path, max_size=1000, max_file=3, compress=True)
    for i in range(100):
        out.write([b"x" * 99 + b"\n"])
    out.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]
    assert path.stat().st_size == 1000 and len(rotation.open_rotated(tmp_path / "c-json.log.1.gz").read()) == 1000
    assert rotation.rotated(path) == [tmp_path / "c-json.log.2.gz", tmp_path / "c-json.log.1.gz"]
    single = rotation.RotatingFile(tmp_path / "one", max_size=100, max_file=1, compress=False)
    single.write([b"a" * 60, b"b" * 60])
    assert (tmp_path / "one").read_bytes() == b"b" * 60


def test_shipper_joins_parts_follows_renames_and_resumes(tmp_path: Path) -> None:
    capture, state = tmp_path / "capture.log", tmp_path / "offset"
    out_path = tmp_path / "c-json.log"

    def shipper() -> Shipper:
        return Shipper(capture, rotation.RotatingFile(out_path, None, 1, False), JsonFile(), state)

    capture.write_bytes(k8s(T0, "stdout", "P", b"hel") + k8s(T0 + 1, "stderr", "F", b"oops")
                        + k8s(T0 + 2, "stdout", "F", b"lo") + k8s(T0 + 3, "stdout", "P", b"unfinished"))
    s = shipper()
    assert s.pump() > 0
    logged = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [(d["stream"], d["log"]) for d in logged] == [("stderr", "oops\n"), ("stdout", "hello\n")]
    s.close()
    # A new engine resumes at the unfinished line, then conmon starts its capture over (renamed into place).
    s = shipper()
    with open(capture, "ab") as f:
        f.write(k8s(T0 + 4, "stdout", "F", b" line"))
    s.pump()
    with open(capture, "ab") as f:
        f.write(k8s(T0 + 5, "stdout", "F", b"before rename"))
    tmp = tmp_path / "capture.log.tmp"
    tmp.write_bytes(k8s(T0 + 6, "stdout", "F", b"after rename"))
    os.replace(tmp, capture)
    s.pump()
    logged = [json.loads(line)["log"] for line in out_path.read_text().splitlines()]
    assert logged == ["oops\n", "hello\n", "unfinished line\n", "before rename\n", "after rename\n"]
    assert s.pump() == 0
    # A line longer than an entry is cut at 16 KiB, and what is left at the end of a run is flushed.
    with open(capture, "ab") as f:
        for _ in range(5):
            f.write(k8s(T0 + 6, "stdout", "P", b"z" * 4096))
    s.pump()
    s.flush()
    tail = [json.loads(line)["log"] for line in out_path.read_text().splitlines()][5:]
    assert [len(t) for t in tail] == [MAX_ENTRY, 4096] and not tail[0].endswith("\n")
    s.close()


def test_reader_spans_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    out = rotation.RotatingFile(path, max_size=2000, max_file=4, compress=True)
    fmt = JsonFile()
    out.write([fmt.encode(rec(i)) for i in range(100)])
    out.close()

    async def collect(q: Query) -> list[int]:
        return [(r.ts - T0) // 10**6 async for batch in read(fmt, path, q) for r in batch]

    everything = asyncio.run(collect(Query()))
    assert everything == list(range(everything[0], 100)) and len(rotation.rotated(path)) == 3
    assert asyncio.run(collect(Query(tail=30))) == list(range(70, 100))
    assert asyncio.run(collect(Query(since=rec(60).ts, until=rec(80).ts))) == list(range(60, 81))
    assert asyncio.run(collect(Query(since=rec(95).ts, tail=2))) == [98, 99]


def follow(path: Path, rotating: rotation.RotatingFile, steps: list[Callable[[], object]]) -> list[int]:
    """What `docker logs -f` reads of `path` while each of its looks at the end runs the next step (the first
    look is before it opens the files); it stops after the last."""
    stop = asyncio.Event()
    pending = iter(steps)

    async def catch_up() -> None:
        step = next(pending, None)
        if step is None:
            stop.set()
        else:
            await asyncio.to_thread(step)

    async def run() -> list[int]:
        return [(r.ts - T0) // 10**6 async for batch in read(JsonFile(), path, Query(), follow=True, stop=stop,
                                                               catch_up=catch_up, rotating=rotating, poll_interval=0)
                for r in batch]

    return asyncio.run(run())


def entries(numbers: range) -> list[bytes]:
    return [JsonFile().encode(rec(i)) for i in numbers]


@pytest.mark.parametrize("compress", [False, True])
def test_following_reads_every_file_however_many_rotations_pass_between_looks(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / "c-json.log"
    out = rotation.RotatingFile(path, max_size=2000, max_file=3, compress=compress)
    out.write(entries(range(10)))
    # Each look lets the writer rotate several times (about 20 entries a file, 3 files kept) before the next.
    got = follow(path, out, [lambda: None, lambda: out.write(entries(range(10, 100))),
                             lambda: out.write(entries(range(100, 101))), lambda: out.write(entries(range(101, 300)))])
    assert got == list(range(300))
    out.close()


def test_a_follower_goes_on_to_a_later_runs_files(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    first = rotation.RotatingFile(path, max_size=2000, max_file=3, compress=False)
    first.write(entries(range(10)))
    later: list[rotation.RotatingFile] = []

    def restart() -> None:
        # The container stops and starts again: its first writer closes, a new one goes on in the same files.
        first.close()
        later.append(rotation.RotatingFile(path, max_size=2000, max_file=3, compress=False))
        later[0].write(entries(range(10, 30)))

    assert follow(path, first, [lambda: None, restart, lambda: later[0].write(entries(range(30, 40)))]) == \
        list(range(40))
    later[0].close()
