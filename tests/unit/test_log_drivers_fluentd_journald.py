"""fluentd and journald on their own: option checks, the bytes of each event and entry, partial messages, the
forwarding policy fluentd's options set, and the journal's large-entry path."""
from __future__ import annotations

import array
import os
import re
import socket
import struct
import threading
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.logs import fluentd, journald, msgpack, partial
from engine.logs.forward import Forwarder
from engine.logs.settings import LISTED, resolve
from runtime.client.logs import LogRecord
from tests.fixtures.msgpack_decode import decode

SECONDS = 0x6B160BFA  # 2026-12-07T01:29:30Z, the time of the events dockerd sent below


def rec(data: bytes, stream: str = "stdout", partial_: bool = False, ts: int = SECONDS * 10**9) -> LogRecord:
    return LogRecord(ts=ts, stream=stream, data=data, partial=partial_)


class Container:
    id = "8bee20eb531fa46f02423e43fb6fe465e566120b1b5a59624d3481a8223044b3"
    name = "f3"
    image = "busybox"
    image_id = "sha256:034d2b55067d3638e79f5fa7fc36738ab9df11672aa9e80b189275a3809134e4"
    path, args = "sh", ["-c", "echo hi"]
    config = {"Labels": {"com.example.team": "core"}, "Env": ["_stage-1=t", "PATH=/bin", "BIG=" + "x" * 300_000]}


def test_listed_and_settings() -> None:
    assert LISTED == ("fluentd", "gelf", "journald", "json-file", "local", "syslog")
    s = resolve({"Type": "fluentd", "Config": {"cache-max-size": "1k"}}, "json-file", {})
    assert (s.remote, s.readable, s.max_size) == (True, True, 1000)
    assert resolve({"Type": "journald"}, "json-file", {}).remote
    assert not resolve({"Type": "journald", "Config": {"cache-disabled": "true"}}, "json-file", {}).readable


@pytest.mark.parametrize("address, expected", [
    ("", ("tcp", "127.0.0.1", 24224, "")),
    ("fluent.example:24000", ("tcp", "fluent.example", 24000, "")),
    ("tcp://10.0.0.5:5000", ("tcp", "10.0.0.5", 5000, "")),
    ("tcp://fluent.example", ("tcp", "127.0.0.1", 24224, "")),  # dockerd's: no port, no host either
    (":24225", ("tcp", "127.0.0.1", 24225, "")),
    ("unix:///run/fluent.sock", ("unix", "", 0, "/run/fluent.sock")),
    ("udp://h:1", ("udp", "h", 1, "")),
    ("[::1]:7", ("tcp", "::1", 7, "")),
])
def test_fluentd_addresses(address: str, expected: tuple[str, str, int, str]) -> None:
    assert fluentd.location(address) == expected


def test_fluentd_refusals_in_dockerds_words() -> None:
    # As dockerd 20.10 answered `docker create --log-driver fluentd --log-opt ...`.
    for options, words in (
            ({"fluentd-address": "http://x"},
             'invalid fluentd-address http://x: strconv.Atoi: parsing "//x": invalid syntax'),
            ({"fluentd-address": "h:p"}, 'invalid fluentd-address h:p: strconv.Atoi: parsing "p": invalid syntax'),
            ({"fluentd-address": "[::1"}, "invalid fluentd-address [::1: address [::1: missing ']' in address"),
            ({"fluentd-buffer-limit": "x"}, "invalid size: 'x'"),
            ({"fluentd-retry-wait": "x"}, 'time: invalid duration "x"'),
            ({"fluentd-retry-wait": "5"}, 'time: missing unit in duration "5"'),
            ({"fluentd-max-retries": "-1"}, 'strconv.ParseUint: parsing "-1": invalid syntax'),
            ({"fluentd-async": "maybe"}, 'strconv.ParseBool: parsing "maybe": invalid syntax'),
            ({"fluentd-request-ack": "x"}, 'strconv.ParseBool: parsing "x": invalid syntax'),
            ({"fluentd-async": "true", "fluentd-async-connect": "true"},
             "conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect"),
            ({"bogus": "1"}, "unknown log opt 'bogus' for fluentd log driver"),
            ({"max-size": "1m"}, "unknown log opt 'max-size' for fluentd log driver")):
        with pytest.raises(InvalidArgument, match="^" + re.escape(words) + "$"):
            resolve({"Type": "fluentd", "Config": options}, "json-file", {})
    with pytest.raises(InvalidArgument, match="^unknown log opt 'bogus' for journald log driver$"):
        resolve({"Type": "journald", "Config": {"bogus": "1"}}, "json-file", {})
    for good in ({"fluentd-buffer-limit": "1k", "fluentd-retry-wait": "500ms", "fluentd-max-retries": "3"},
                 {"fluentd-async-connect": "true"}, {"fluentd-address": "unix://"}, {"tag": "{{.Name}}"}):
        resolve({"Type": "fluentd", "Config": good}, "json-file", {})


def test_fluentd_dial_errors_are_dockerds(tmp_path: Path) -> None:
    # As dockerd 20.10 failed `docker run --log-driver fluentd --log-opt fluentd-address=...`, but for the path.
    for address, words in (("udp://127.0.0.1:1", "unknown network udp"),
                           ("unixgram:///x", "unknown network unixgram"), ("unix://", "dial unix: missing address"),
                           (f"unix://{tmp_path}/none",
                            f"dial unix {tmp_path}/none: connect: no such file or directory")):
        with pytest.raises(OSError, match="^" + re.escape(words) + "$"):
            fluentd.Fluentd({"fluentd-address": address}, Container()).connect()


def test_fluentd_policy_and_async() -> None:
    p = fluentd.policy({"fluentd-buffer-limit": "2k", "fluentd-retry-wait": "250ms", "fluentd-max-retries": "0"})
    assert (p.max_lines, p.retry, p.factor, p.max_retry, p.tries, p.empty) == (2048, 0.25, 1.5, 60.0, 1, True)
    assert fluentd.policy({}).tries is None and fluentd.policy({}).max_lines == 1 << 20
    assert fluentd.connects_first({}) and fluentd.connects_first({"fluentd-async": "false"})
    assert not fluentd.connects_first({"fluentd-async": "1"}) and not fluentd.connects_first(
        {"fluentd-async-connect": "true"})


def test_msgpack_forms() -> None:
    assert msgpack.pack("a" * 31)[:1] == b"\xbf" and msgpack.pack("a" * 32)[:2] == b"\xd9\x20"
    assert msgpack.pack(b"a" * 256)[:3] == b"\xda\x01\x00"
    assert msgpack.pack(b"a" * 65536)[:5] == b"\xdb\x00\x01\x00\x00"
    assert [msgpack.pack(n) for n in (5, -1, 200, 40000, 1796606970, 1 << 40)] == [
        b"\x05", b"\xff", b"\xd1\x00\xc8", b"\xd2\x00\x00\x9c\x40", b"\xd2k\x16\x0b\xfa",
        b"\xd3" + (1 << 40).to_bytes(8, "big")]
    assert msgpack.pack({str(n): "" for n in range(16)})[:3] == b"\xde\x00\x10"
    assert msgpack.pack(msgpack.EventTime(1, 2)) == b"\xd7\x00\x00\x00\x00\x01\x00\x00\x00\x02"
    answer = msgpack.pack({"ack": "+gsWawAAAAD/Gw6QWlA6kA=="})
    assert msgpack.unpack_strings(answer) == ({"ack": "+gsWawAAAAD/Gw6QWlA6kA=="}, len(answer))
    with pytest.raises(msgpack.Incomplete):
        msgpack.unpack_strings(answer[:-1])


def _event(c: Container, options: dict[str, str], r: LogRecord, chunk: str | None = None) -> bytes:
    sender = fluentd.Fluentd(options, c)
    piece = partial.Pieces().of(r)[0]
    return fluentd.event(sender._tag, r, fluentd.record(sender._base, r.stream, piece),
                         fluentd._flag(options, "fluentd-sub-second-precision"), chunk)


def test_fluentd_events_are_dockerds() -> None:
    # Captured from dockerd 20.10: `docker run --log-driver fluentd --log-opt fluentd-request-ack=true ... echo one`
    # (its record's keys come in Go's random map order; this one happened to be in the order sent here).
    c = Container()
    assert _event(c, {"fluentd-request-ack": "true"}, rec(b"one\n"), "+gsWawAAAAD/Gw6QWlA6kA==") == (
        b"\x94\xac8bee20eb531f\xd2k\x16\x0b\xfa\x84\xaccontainer_id\xd9@" + c.id.encode()
        + b"\xaecontainer_name\xa3/f3\xa6source\xa6stdout\xa3log\xa3one\x81\xa5chunk\xb8+gsWawAAAAD/Gw6QWlA6kA==")
    # fluentd-sub-second-precision: the time as an EventTime (ext 0); the line's bytes as they are.
    ts = 0x6B160BF9 * 10**9 + 0x239AC68E
    assert _event(c, {"fluentd-sub-second-precision": "true", "tag": "x.{{.Name}}"},
                  rec("é\n".encode(), ts=ts)) == (
        b"\x94\xa4x.f3\xd7\x00k\x16\x0b\xf9#\x9a\xc6\x8e\x84\xaccontainer_id\xd9@" + c.id.encode()
        + b"\xaecontainer_name\xa3/f3\xa6source\xa6stdout\xa3log\xa2\xc3\xa9\x80")
    # The labels and env vars named, as they are named; an empty line is an event too.
    event = _event(c, {"labels": "com.example.team", "env-regex": "^_"}, rec(b"\n", "stderr"))
    value, _ = decode(event)
    assert value == ["8bee20eb531f", SECONDS, {"container_id": c.id, "container_name": "/f3", "source": "stderr",
                                               "log": "", "com.example.team": "core", "_stage-1": "t"}, {}]
    assert fluentd.chunk_id(SECONDS).startswith("+gsWawAAAA")  # the time's bytes, as fluent-logger's


def test_partial_pieces() -> None:
    pieces = partial.Pieces()
    assert pieces.of(rec(b"whole\n")) == [partial.Piece(b"whole", None)]
    # A line of 40000 bytes handed over as a part of 20000 and the rest: 16 KiB pieces, numbered, the last so.
    first = pieces.of(rec(b"a" * 20000, partial_=True))
    rest = pieces.of(rec(b"b" * 20000 + b"\n"))
    got = first + rest
    assert [len(p.data) for p in got] == [16384, 3616, 16384, 3616]
    assert [(p.meta.ordinal, p.meta.last) for p in got if p.meta] == [(1, False), (2, False), (3, False), (4, True)]
    assert len({p.meta.id for p in got if p.meta}) == 1 and re.fullmatch("[0-9a-f]{64}", got[0].meta.id or "")
    # The run's unfinished last line: a piece, not the last, as dockerd sends "tail" of `printf tail`.
    (tail,) = pieces.of(rec(b"tail", partial_=True))
    assert tail.meta is not None and (tail.data, tail.meta.ordinal, tail.meta.last) == (b"tail", 1, False)
    assert pieces.of(rec(b"next\n")) == [partial.Piece(b"next", None)]


def test_fluentd_waits_for_its_ack(tmp_path: Path) -> None:
    path = str(tmp_path / "fluent.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    got: list[object] = []

    def serve() -> None:
        conn, _ = server.accept()
        data = b""
        while len(got) < 2:
            data += conn.recv(65536)
            try:
                value, end = decode(data)
            except (IndexError, msgpack.Incomplete):
                continue
            data = data[end:]
            got.append(value)
            assert isinstance(value, list)
            chunk = value[3]["chunk"]
            # The first answer is split, the second one wrong: the line goes again.
            answer = msgpack.pack({"ack": chunk if len(got) == 1 else "nope"})
            conn.sendall(answer[:3])
            conn.sendall(answer[3:])
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    sender = fluentd.Fluentd({"fluentd-address": f"unix://{path}", "fluentd-request-ack": "true"}, Container())
    sender.connect()
    sender.send(rec(b"one\n"))
    with pytest.raises(OSError, match="answered chunk"):
        sender.send(rec(b"two\n"))
    sender.close()
    server.close()
    assert [v[2]["log"] for v in got if isinstance(v, list)] == ["one", "two"]


class Refusing:
    def __init__(self) -> None:
        self.tries = 0

    def connect(self) -> None:
        self.tries += 1
        raise ConnectionRefusedError(111, "Connection refused")

    def send(self, r: LogRecord) -> None:
        self.connect()

    def close(self) -> None:
        pass


def test_forwarder_gives_up_after_fluentd_max_retries() -> None:
    sender = Refusing()
    fwd = Forwarder("fluentd", "c" * 64, sender, policy=fluentd.policy(
        {"fluentd-max-retries": "2", "fluentd-retry-wait": "10ms"}))
    for n in range(3):
        fwd.put(rec(b"%d\n" % n))
    fwd.put(rec(b"\n"))
    deadline = 100
    while sender.tries < 8 and deadline:
        threading.Event().wait(0.05)
        deadline -= 1
    fwd.close(timeout=0)
    assert sender.tries == 8  # two tries of each of the four lines, the empty one too, then none queued


def test_journald_fields_and_entry() -> None:
    c = Container()
    options = {"labels": "com.example.team", "env": "_stage-1", "tag": "{{.Name}}/{{.ID}}"}
    fields = journald.fields(c, options)
    assert fields == {"CONTAINER_ID": c.id[:12], "CONTAINER_ID_FULL": c.id, "CONTAINER_NAME": "f3",
                      "CONTAINER_TAG": "f3/8bee20eb531f", "IMAGE_NAME": "busybox",
                      "SYSLOG_IDENTIFIER": "f3/8bee20eb531f",
                      "COM_EXAMPLE_TEAM": "core", "STAGE_1": "t"}
    assert journald.sanitize("__a.b-C9é") == "A_B_C9_"
    whole = journald.entry("stderr", partial.Piece(b"oops", None), {"CONTAINER_ID": "x"})
    assert whole == b"PRIORITY=3\nMESSAGE=oops\nCONTAINER_ID=x\n"
    # A value with a newline goes in the binary-safe form; a piece before the last is marked.
    piece = partial.Piece(b"a\nb", partial.Meta("i", 1, False))
    assert journald.entry("stdout", piece, {}) == (b"PRIORITY=6\nMESSAGE\n" + struct.pack("<Q", 3) + b"a\nb\n"
                                                  b"CONTAINER_PARTIAL_MESSAGE=true\n")
    last = partial.Piece(b"z", partial.Meta("i", 2, True))
    assert journald.entry("stdout", last, {}) == b"PRIORITY=6\nMESSAGE=z\n"


def test_journald_socket_and_large_entries(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.sock")
    sender = journald.Journald(path, Container(), {})
    with pytest.raises(OSError, match="^journald is not enabled on this host$"):
        sender.connect()
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(path)
    journal.settimeout(5)
    sender.connect()
    sender.send(rec(b"hello\n"))
    assert journal.recv(65536).startswith(b"PRIORITY=6\nMESSAGE=hello\nCONTAINER_ID=8bee20eb531f\n")
    sender.close()
    # Past what a datagram takes (a 300 kB env var): a sealed memfd passed along the socket.
    sender = journald.Journald(path, Container(), {"env": "BIG"})
    sender.send(rec(b"big\n"))
    fds = array.array("i")
    msg, anc, _, _ = journal.recvmsg(16, socket.CMSG_SPACE(fds.itemsize))
    fds.frombytes(anc[0][2])
    with os.fdopen(fds[0], "rb") as f:
        data = os.pread(f.fileno(), 1 << 20, 0)  # the journal maps it: where the sender's writes left off is no matter
    assert msg == b"" and data.startswith(b"PRIORITY=6\nMESSAGE=big\n")
    assert data.endswith(b"\nBIG=" + b"x" * 300_000 + b"\n")
    sender.close()
    journal.close()
