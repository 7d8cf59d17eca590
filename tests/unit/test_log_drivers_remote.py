"""syslog and gelf on their own: option checks, the bytes of each message, forwarding and the shipper's hand-over."""
from __future__ import annotations

import gzip
import json
import os
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.logs import forward, gelf, rotation, syslog
from engine.logs.forward import Forwarder
from engine.logs.local import Cache
from engine.logs.settings import LISTED, resolve
from engine.logs.shipper import Shipper
from runtime.client.logs import LogRecord

TS = 1_796_605_492_998_123_456  # 2026-12-07T01:04:52.998123456Z


@pytest.fixture
def utc() -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_settings_of_remote_drivers(tmp_path: Path) -> None:
    assert LISTED == ("fluentd", "gelf", "journald", "json-file", "local", "syslog")
    s = resolve({"Type": "syslog", "Config": {"syslog-address": "udp://127.0.0.1:514"}}, "json-file", {})
    # The options stay as given (inspect shows them so); the cache is sized as the local driver's files.
    assert (s.options, s.readable, s.remote) == ({"syslog-address": "udp://127.0.0.1:514"}, True, True)
    assert (s.max_size, s.max_file, s.compress) == (20_000_000, 5, True)
    s = resolve({"Type": "gelf", "Config": {"gelf-address": "udp://h:1", "cache-max-size": "1k",
                                            "cache-max-file": "1"}}, "json-file", {})
    assert (s.max_size, s.max_file, s.compress) == (1000, 1, False)
    assert not resolve({"Type": "syslog", "Config": {"cache-disabled": "true"}}, "json-file", {}).readable
    sock = tmp_path / "log.sock"
    sock.touch()
    for address in (f"unix://{sock}", f"unixgram://{sock}", "tcp://h", "udp://[::1]:5", "udp://"):
        resolve({"Type": "syslog", "Config": {"syslog-address": address}}, "json-file", {})
    resolve({"Type": "syslog", "Config": {"syslog-address": "tcp+tls://h:6514", "syslog-tls-skip-verify": ""}},
            "json-file", {})
    for config, words in (
            ({"syslog-address": "http://x"}, "syslog-address should be in form proto://address, got http://x"),
            ({"syslog-address": "udp://[::1"}, "missing ']' in host"),
            ({"syslog-address": f"unix://{tmp_path}/x"}, f"stat {tmp_path}/x: no such file or directory"),
            ({"syslog-facility": "24"}, "invalid syslog facility"),
            ({"syslog-facility": "bogus"}, "invalid syslog facility"),
            ({"syslog-format": "rfc5425"}, "Invalid syslog format"),
            ({"syslog-tls-cert": "/c"}, '"syslog-tls-cert" is only valid with a tcp+tls:// syslog-address'),
            ({"max-file": "2"}, "unknown log opt 'max-file' for syslog log driver"),
            ({"cache-disabled": "maybe"}, "invalid value for option cache-disabled: maybe"),
            ({"cache-max-size": "lots"}, "invalid size: 'lots'")):
        with pytest.raises(InvalidArgument, match=re.escape(words)):
            resolve({"Type": "syslog", "Config": config}, "json-file", {})
    assert syslog.facility("local7") == 23 and syslog.facility("3") == 3 and syslog.facility("") == 3
    udp = {"gelf-address": "udp://127.0.0.1:12201"}
    tcp = {"gelf-address": "tcp://127.0.0.1:12201"}
    resolve({"Type": "gelf", "Config": {**udp, "gelf-compression-level": "-1", "labels-regex": "x"}}, "json-file", {})
    resolve({"Type": "gelf", "Config": {**tcp, "gelf-tcp-max-reconnect": "0", "gelf-tcp-reconnect-delay": "0"}},
            "json-file", {})
    for config, words in (({}, "gelf-address is a required parameter"),
                          ({"gelf-address": "unixgram:///x"}, "gelf: endpoint needs to be TCP or UDP"),
                          ({"gelf-address": "udp://h"}, "please provide gelf-address as proto://host:port"),
                          ({**udp, "gelf-compression-level": "-2"}, 'unknown value "-2" for log opt'),
                          ({**udp, "gelf-compression-type": "lz4"}, 'unknown value "lz4" for log opt'),
                          ({**udp, "gelf-tcp-reconnect-delay": "1"}, '"gelf-tcp-reconnect-delay" is only valid'),
                          ({**tcp, "gelf-compression-level": "1"}, "compression is only supported on UDP"),
                          ({**tcp, "gelf-tcp-max-reconnect": "x"}, '"gelf-tcp-max-reconnect" must be a positive'),
                          ({**udp, "syslog-address": "udp://h:1"}, 'unknown log opt "syslog-address" for gelf')):
        with pytest.raises(InvalidArgument, match=re.escape(words)):
            resolve({"Type": "gelf", "Config": config}, "json-file", {})


def test_syslog_messages_are_dockerds(utc: None) -> None:
    # As dockerd 20.10 sent them (captured from it), but for the time, host, tag and PID given here.
    assert syslog.message("", 30, TS, "vm", "bf4a9f6ee540", 21125, b"hello") == \
        b"<30>Dec  7 01:04:52 bf4a9f6ee540[21125]: hello\n"
    assert syslog.message("rfc3164", 27, TS, "vm", "t", 7, b"oops") == b"<27>Dec  7 01:04:52 vm t[7]: oops\n"
    assert syslog.message("rfc5424", 158, TS, "vm", "web", 7, b"hi") == \
        b"<158>1 2026-12-07T01:04:52Z vm web 7 web - hi\n"
    assert syslog.message("rfc5424micro", 30, TS, "vm", "t", 7, b"hi") == \
        b"<30>1 2026-12-07T01:04:52.998123Z vm t 7 t - hi\n"
    # Over TLS, RFC 5425's octet count in front.
    framed = syslog.message("rfc5424", 30, TS, "vm", "t", 7, b"hi", tls=True)
    assert framed == b"%d " % len(framed.partition(b" ")[2]) + b"<30>1 2026-12-07T01:04:52Z vm t 7 t - hi\n"


def test_syslog_time_in_the_hosts_zone() -> None:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "EST+5"
    time.tzset()
    try:
        assert syslog.message("rfc5424", 30, TS, "vm", "t", 7, b"x").startswith(b"<30>1 2026-12-06T20:04:52-05:00 ")
    finally:
        os.environ.pop("TZ")
        if saved is not None:
            os.environ["TZ"] = saved
        time.tzset()


class Container:
    id = "e32b842db23ad030186a159e7779ffeff6afb15d16c434cf788453f203d6e5e7"
    name = "web"
    image = "busybox"
    image_id = "sha256:034d2b55067d3638e79f5fa7fc36738ab9df11672aa9e80b189275a3809134e4"
    config = {"Labels": {"team": "core", "_x": "y"}, "Env": ["STAGE=t", "PATH=/bin"]}
    created = 1796605492.5
    path = "sh"
    args = ["-c", "echo a >&2"]


def test_gelf_message_is_dockerds() -> None:
    extra = gelf.extra_fields(Container(), {"labels": "team,_x", "env": "STAGE", "tag": "{{.Name}}"})
    rec = LogRecord(ts=TS, stream="stderr", data=b"a<\x01\xff\n", partial=False)
    assert gelf.message("vm", rec, extra) == (
        b'{"version":"1.1","host":"vm","short_message":"a\\u003c\\u0001\xef\xbf\xbd","timestamp":1796605492.998,'
        b'"level":3,"_STAGE":"t","_command":"sh -c echo a \\u003e\\u00262",'
        b'"_container_id":"e32b842db23ad030186a159e7779ffeff6afb15d16c434cf788453f203d6e5e7",'
        b'"_container_name":"web","_created":"2026-12-07T01:04:52.5Z",'
        b'"_image_id":"sha256:034d2b55067d3638e79f5fa7fc36738ab9df11672aa9e80b189275a3809134e4",'
        b'"_image_name":"busybox","_tag":"web","_team":"core","_x":"y"}')
    whole = LogRecord(ts=1_796_605_493_000_400_000, stream="stdout", data=b"x\n", partial=False)
    assert b'"timestamp":1796605493,"level":6}' in gelf.message("vm", whole, "")


def test_gelf_compression_and_chunks() -> None:
    data = b'{"short_message":"x"}' * 10
    for level, xfl in ((1, 4), (9, 2), (-1, 0), (0, 0)):
        packed = gelf.compress(data, "gzip", level)
        assert packed[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes((xfl, 0xFF))  # Go's header
        assert gzip.decompress(packed) == data
    assert gelf.compress(data, "zlib", 1)[:2] == b"\x78\x01" and zlib.decompress(gelf.compress(data, "zlib", 1)) == data
    assert gelf.compress(data, "none", 1) == data
    assert gelf.chunks(b"a" * 1420) == [b"a" * 1420]
    parts = gelf.chunks(bytes(range(256)) * 20)
    assert [len(p) for p in parts] == [1420, 1420, 1420, 12 + 5120 - 3 * 1408]
    assert all(p[:2] == b"\x1e\x0f" and p[2:10] == parts[0][2:10] for p in parts)
    assert [p[10:12] for p in parts] == [bytes((n, 4)) for n in range(4)]
    assert b"".join(p[12:] for p in parts) == bytes(range(256)) * 20
    assert gelf.chunks(b"a" * 1408 * 129) == []  # past GELF's 128 chunks: not sent


class FlakySender:
    """Refuses until told to take lines; then keeps them."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.got: list[bytes] = []

    def connect(self) -> None:
        if not self.up.is_set():
            raise ConnectionRefusedError(111, "Connection refused")

    def send(self, rec: LogRecord) -> None:
        self.connect()
        self.got.append(rec.data)

    def close(self) -> None:
        pass


def rec(data: bytes, stream: str = "stdout") -> LogRecord:
    return LogRecord(ts=TS, stream=stream, data=data, partial=False)


def test_forwarder_holds_lines_while_the_server_is_down(caplog: pytest.LogCaptureFixture) -> None:
    sender = FlakySender()
    fwd = Forwarder("syslog", "c" * 64, sender)
    started = time.monotonic()
    for n in range(100):
        fwd.put(rec(b"%d\n" % n))
    fwd.put(rec(b"\n"))  # not sent, as dockerd sends no empty line
    assert time.monotonic() - started < 0.5  # never waits on the server
    time.sleep(0.3)
    sender.up.set()
    fwd.close(timeout=5)
    assert sender.got == [b"%d\n" % n for n in range(100)]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "to syslog failed" in warnings[0].getMessage()


def test_forwarder_drops_the_oldest_past_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forward, "MAX_QUEUED", 10)
    sender = FlakySender()
    fwd = Forwarder("gelf", "c" * 64, sender)
    for n in range(10):
        fwd.put(rec(b"%d\n" % n))
    sender.up.set()
    fwd.close(timeout=5)
    assert sender.got[-5:] == [b"%d\n" % n for n in range(5, 10)] and len(sender.got) <= 6


def k8s(stream: str, tag: str, content: bytes) -> bytes:
    return f"2026-12-07T01:04:52.998123456+00:00 {stream} {tag} ".encode() + content + b"\n"


@pytest.mark.parametrize("cached", [True, False])
def test_shipper_hands_whole_lines_to_the_forwarder(tmp_path: Path, cached: bool) -> None:
    capture = tmp_path / "capture"
    capture.write_bytes(k8s("stdout", "P", b"hel") + k8s("stderr", "F", b"oops") + k8s("stdout", "F", b"lo")
                        + k8s("stdout", "F", b"") + k8s("stdout", "P", b"tail"))
    sender = FlakySender()
    sender.up.set()
    fwd = Forwarder("syslog", "c" * 64, sender)
    out = rotation.RotatingFile(tmp_path / Cache.entry_path, None, 1, False) if cached else None
    shipper = Shipper(capture, out, Cache(), tmp_path / "offset", fwd)
    shipper.pump()
    shipper.flush()
    shipper.close()
    assert sender.got == [b"oops\n", b"hello\n", b"tail"]
    if cached:
        records, _ = Cache.decode((tmp_path / Cache.entry_path).read_bytes())
        assert [r.data for r in records] == [b"oops\n", b"hello\n", b"\n", b"tail"]
    else:
        assert not (tmp_path / Cache.entry_path).exists()


def test_gelf_sends_over_udp() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    sender = gelf.Gelf({"gelf-address": f"udp://127.0.0.1:{udp.getsockname()[1]}"}, Container())
    sender.connect()
    sender.send(rec(b"hi\n"))
    doc = json.loads(gzip.decompress(udp.recv(65536)))
    assert (doc["short_message"], doc["level"], doc["_tag"]) == ("hi", 6, Container.id[:12])
    sender.close()
    udp.close()
