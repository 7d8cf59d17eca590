"""Log drivers: json-file in Docker's own on-disk format with rotation, local, none, and syslog, gelf, fluentd and
journald sending to servers the tests start (the journal a datagram socket the engine is pointed at with
--journald-socket, never the host's), with the cache that keeps `docker logs` working; `docker logs` over them."""
from __future__ import annotations

import contextlib
import gzip
import base64
import json
import os
import re
import socket
import subprocess
import threading
import time
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.logs import msgpack
from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.fixtures.msgpack_decode import decode
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

no_leftovers = containers.no_leftovers


def refused(engine, driver: str, opts: list[str], words: str) -> None:
    args = [arg for o in opts for arg in ("--log-opt", o)]
    bad = cli(engine, "create", "--log-driver", driver, *args, "busybox", "true")
    assert bad.returncode != 0 and words in bad.stderr, (opts, bad.stderr)


def unused_port() -> int:
    """A local TCP port nothing listens on (bound a moment, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def journal_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's engine looks for journald: nothing listens there unless a test binds it."""
    return tmp_path_factory.mktemp("journal") / "socket"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry, journal_path: Path) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host,
                         extra_args=["--journald-socket", str(journal_path)]) as e:
        yield e

# What Go's RFC3339Nano writes: UTC, the fraction without trailing zeros.
_GO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")


def container_dir(engine, cid: str) -> Path:
    return Path(engine.base) / "data" / "containers" / cid


def wait_exit(engine, name: str) -> None:
    assert ok(engine, "wait", name).strip() == "0"


def test_json_file_rotates_and_reads_across_files(engine) -> None:
    # 10 MB of numbered 100-byte lines.
    script = "i=0; while [ $i -lt 100000 ]; do printf '%099d\\n' $i; i=$((i+1)); done"
    cid = ok(engine, "run", "-d", "--name", "chatty", "--log-opt", "max-size=1m", "--log-opt", "max-file=3",
             "busybox", "sh", "-c", script).strip()
    wait_exit(engine, "chatty")
    d = container_dir(engine, cid)
    files = sorted(p.name for p in d.iterdir() if p.name.startswith(f"{cid}-json.log"))
    assert files == [f"{cid}-json.log", f"{cid}-json.log.1", f"{cid}-json.log.2"]
    for name in files:
        assert (d / name).stat().st_size <= 1_000_000
    lines = (d / f"{cid}-json.log").read_bytes().splitlines()
    for raw in lines[:50] + lines[-50:]:
        doc = json.loads(raw)
        assert list(doc) == ["log", "stream", "time"] and doc["stream"] == "stdout"
        assert _GO_TIME.match(doc["time"]) and len(doc["log"]) == 100 and doc["log"].endswith("\n")
    assert json.loads(lines[-1])["log"] == "%099d\n" % 99999
    inspect = json.loads(ok(engine, "inspect", cid))[0]
    assert inspect["LogPath"] == str(d / f"{cid}-json.log")
    assert inspect["HostConfig"]["LogConfig"] == {"Type": "json-file",
                                                  "Config": {"max-size": "1m", "max-file": "3"}}
    # Everything the three files hold, oldest first, through the CLI.
    out = ok(engine, "logs", "chatty").splitlines()
    assert out[-1] == "%099d" % 99999 and len(out) == sum(len((d / n).read_bytes().splitlines()) for n in files)
    numbers = [int(line) for line in out]
    assert numbers == list(range(numbers[0], 100000))
    assert ok(engine, "logs", "--tail", "3", "chatty").split() == ["%099d" % n for n in (99997, 99998, 99999)]


def test_since_and_tail_across_rotation(engine) -> None:
    script = ("i=0; while [ $i -lt 30000 ]; do printf 'old%096d\\n' $i; i=$((i+1)); done; sleep 2; "
              "for n in 1 2 3 4 5 6 7; do echo new$n; done")
    ok(engine, "run", "-d", "--name", "twophase", "--log-opt", "max-size=500k", "--log-opt", "max-file=4",
       "busybox", "sh", "-c", script)
    wait_exit(engine, "twophase")
    assert ok(engine, "logs", "--since", "1s", "--tail", "5", "twophase").split() == \
        [f"new{n}" for n in range(3, 8)]
    recent = ok(engine, "logs", "--since", "1.5s", "twophase").split()
    assert recent == [f"new{n}" for n in range(1, 8)] or recent[-7:] == [f"new{n}" for n in range(1, 8)]
    stamped = ok(engine, "logs", "-t", "--tail", "1", "twophase")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z new7\n$", stamped)
    until = ok(engine, "logs", "--until", "1.5s", "--tail", "2", "twophase").split()
    assert all(line.startswith("old") for line in until)


def test_compressed_rotation_and_follow(engine) -> None:
    script = "i=0; while [ $i -lt 20000 ]; do printf '%099d\\n' $i; i=$((i+1)); done; sleep 1"
    cid = ok(engine, "run", "-d", "--name", "zipped", "--log-opt", "max-size=300k", "--log-opt", "max-file=3",
             "--log-opt", "compress=true", "busybox", "sh", "-c", script).strip()
    followed = subprocess.run(["docker", "logs", "-f", "zipped"], env=engine.env(), capture_output=True, text=True,
                              timeout=60)
    assert followed.returncode == 0
    numbers = [int(line) for line in followed.stdout.split()]
    assert numbers[-1] == 19999 and numbers == list(range(numbers[0], 20000))
    d = container_dir(engine, cid)
    assert (d / f"{cid}-json.log.1.gz").exists() and (d / f"{cid}-json.log.2.gz").exists()
    with gzip.open(d / f"{cid}-json.log.1.gz") as f:
        assert json.loads(f.readline())["stream"] == "stdout"


def test_stderr_stream_and_attrs(engine) -> None:
    ok(engine, "run", "--name", "attrs", "--label", "team=core", "-e", "STAGE=test",
       "--log-opt", "labels=team", "--log-opt", "env=STAGE", "--log-opt", "tag={{.Name}}/{{.ID}}",
       "busybox", "sh", "-c", "echo out; echo err >&2")
    cid = ok(engine, "inspect", "--format", "{{.Id}}", "attrs").strip()
    entries = [json.loads(line) for line in (container_dir(engine, cid) / f"{cid}-json.log").read_text().splitlines()]
    assert {e["stream"]: e["log"] for e in entries} == {"stdout": "out\n", "stderr": "err\n"}
    assert entries[0]["attrs"] == {"team": "core", "STAGE": "test", "tag": f"attrs/{cid[:12]}"}
    assert list(entries[0]) == ["log", "stream", "attrs", "time"]
    out = cli(engine, "logs", "attrs")
    assert (out.stdout, out.stderr) == ("out\n", "err\n")
    # {{.Command}} is filled; a tag dockerd could not evaluate is refused before anything runs.
    ok(engine, "run", "--name", "cmdtag", "--log-opt", "tag={{.Command}}", "busybox", "echo", "hi")
    assert ok(engine, "logs", "--details", "cmdtag") == "tag=echo+hi hi\n"  # Go's QueryEscape, as dockerd
    for tag, words in (("{{.Bogus}}", "can't evaluate field Bogus"), ("{{", "unclosed action")):
        bad = cli(engine, "run", "--rm", "--log-opt", f"tag={tag}", "busybox", "echo", "hi")
        assert bad.returncode == 125 and words in bad.stderr and bad.stdout == "", bad
    assert ok(engine, "ps", "-aq", "--filter", "status=created") == ""


def test_local_driver(engine) -> None:
    ok(engine, "run", "--name", "compact", "--log-driver", "local", "busybox", "sh", "-c",
       "echo one; printf 'two'; echo three >&2")
    cid = ok(engine, "inspect", "--format", "{{.Id}}", "compact").strip()
    assert (container_dir(engine, cid) / "local-logs" / "container.log").stat().st_size > 0
    out = cli(engine, "logs", "compact")
    assert out.stdout == "one\ntwo" and out.stderr == "three\n"
    # An unfinished line is logged when its stream ends, after what came meanwhile, as dockerd's copier does.
    last = cli(engine, "logs", "--tail", "1", "compact")
    assert (last.stdout, last.stderr) == ("two", "")
    doc = json.loads(ok(engine, "inspect", "compact"))[0]
    assert doc["HostConfig"]["LogConfig"]["Type"] == "local" and doc["LogPath"] == ""
    assert doc["HostConfig"]["LogConfig"]["Config"] == {}


def test_non_blocking_mode_is_taken(engine) -> None:
    ok(engine, "run", "--name", "nb", "--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=4m",
       "busybox", "echo", "kept")
    assert ok(engine, "logs", "nb") == "kept\n"
    config = json.loads(ok(engine, "inspect", "nb"))[0]["HostConfig"]["LogConfig"]["Config"]
    assert (config["mode"], config["max-buffer-size"]) == ("non-blocking", "4m")
    bad = cli(engine, "create", "--log-opt", "max-buffer-size=4m", "busybox", "true")
    assert bad.returncode != 0 and "max-buffer-size option is only supported with 'mode=non-blocking'" in bad.stderr


def test_none_driver_and_refusals(engine) -> None:
    ok(engine, "run", "--name", "silent", "--log-driver", "none", "busybox", "echo", "hi")
    out = cli(engine, "logs", "silent")
    assert out.returncode != 0 and "configured logging driver does not support reading" in out.stderr
    cid = ok(engine, "inspect", "--format", "{{.Id}}", "silent").strip()
    assert not any(p.name.endswith(".log") for p in container_dir(engine, cid).glob("**/*"))
    bad = cli(engine, "run", "--log-driver", "syslogx", "busybox", "true")
    assert bad.returncode == 125 and "logger: no log driver named 'syslogx' is registered" in bad.stderr
    bad = cli(engine, "create", "--log-opt", "max-sise=1m", "busybox", "true")
    assert bad.returncode != 0 and "unknown log opt 'max-sise' for json-file log driver" in bad.stderr
    bad = cli(engine, "create", "--log-opt", "compress=true", "--log-opt", "max-file=1", "busybox", "true")
    assert "compress cannot be true when max-file is less than 2 or max-size is not set" in bad.stderr
    status, _, body = curl(engine, "POST", "/v1.50/containers/create",
                           json.dumps({"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "json-file",
                                                                                         "Config": {"max-size": "x"}}}}))
    assert status == 400 and "invalid size: 'x'" in json.loads(body)["message"]


def test_default_is_bounded(engine) -> None:
    ok(engine, "run", "--name", "plain", "busybox", "true")
    doc = json.loads(ok(engine, "inspect", "plain"))[0]
    assert doc["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    info = json.loads(ok(engine, "info", "--format", "{{json .}}"))
    assert info["LoggingDriver"] == "json-file"
    assert info["Plugins"]["Log"] == ["fluentd", "gelf", "journald", "json-file", "local", "syslog"]


def test_logs_removed_with_the_container(engine) -> None:
    ok(engine, "run", "--name", "gone", "busybox", "echo", "bye")
    cid = ok(engine, "inspect", "--format", "{{.Id}}", "gone").strip()
    path = container_dir(engine, cid) / f"{cid}-json.log"
    assert path.exists()
    ok(engine, "rm", "gone")
    assert not path.exists() and not os.path.exists(container_dir(engine, cid) / "capture-offset")


def test_output_written_while_the_engine_is_down_is_shipped_after(engine) -> None:
    ok(engine, "run", "-d", "--name", "ticker", "busybox", "sh", "-c",
       "i=0; while [ $i -lt 60 ]; do echo $i; i=$((i+1)); sleep 0.05; done")
    time.sleep(0.5)
    engine.kill9()
    time.sleep(1)
    engine.start()
    wait_exit(engine, "ticker")
    numbers = [int(n) for n in ok(engine, "logs", "ticker").split()]
    # Shipped at least once: an engine killed between writing entries and noting its place repeats a few.
    assert sorted(set(numbers)) == list(range(60)) and numbers == sorted(numbers)


# syslog and gelf -----------------------------------------------------------

SCRIPT = "echo hello; echo 'oops <&>' >&2; echo; printf tail"


def udp_server() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    return s


def datagrams(s: socket.socket, count: int, timeout: float = 10) -> list[bytes]:
    out: list[bytes] = []
    end = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < end:
        with contextlib.suppress(socket.timeout):
            out.append(s.recv(65536))
    return out


@contextlib.contextmanager
def stream_server(family: int, address: object) -> Iterator[tuple[socket.socket, list[bytes]]]:
    """A stream listener keeping all it receives, from every connection, in order of arrival; on leaving,
    its connections are closed too, as a server going down closes them."""
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen()
    got: list[bytes] = []
    conns: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                conns.append(conn)
                threading.Thread(target=read, args=(conn,), daemon=True).start()

    def read(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                got.append(chunk)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener, got
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(), which would keep it listening
        listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def received(got: list[bytes], ending: bytes, timeout: float = 10) -> bytes:
    end = time.monotonic() + timeout
    while not b"".join(got).endswith(ending) and time.monotonic() < end:
        time.sleep(0.05)
    return b"".join(got)


def engine_pid(engine) -> int:
    return int(engine.proc.pid)


def assert_cached(engine, name: str) -> None:
    out = cli(engine, "logs", name)
    assert (out.stdout, out.stderr) == ("hello\n\ntail", "oops <&>\n")


def test_syslog_udp_rfc5424(engine) -> None:
    server = udp_server()
    port = server.getsockname()[1]
    ok(engine, "run", "--name", "sys5424", "--log-driver", "syslog",
       "--log-opt", f"syslog-address=udp://127.0.0.1:{port}", "--log-opt", "syslog-format=rfc5424micro",
       "--log-opt", "syslog-facility=local3", "--log-opt", "tag={{.Name}}", "busybox", "sh", "-c", SCRIPT)
    got = sorted(datagrams(server, 3))
    host, pid = socket.gethostname(), engine_pid(engine)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)"
    # local3 is facility 19: 19 * 8 + 6 (info) for stdout, + 3 (err) for stderr; the empty line is not sent.
    expected = [(b"155", b"oops <&>"), (b"158", b"hello"), (b"158", b"tail")]
    assert len(got) == 3
    for raw, (priority, line) in zip(got, expected):
        m = re.fullmatch(rb"<(\d+)>1 " + stamp.encode() + rb" (\S+) sys5424 (\d+) sys5424 - (.*)\n", raw)
        assert m is not None, raw
        assert (m[1], m[4], int(m[5]), m[6]) == (priority, host.encode(), pid, line)
    assert_cached(engine, "sys5424")
    doc = json.loads(ok(engine, "inspect", "sys5424"))[0]
    assert doc["LogPath"] == "" and doc["HostConfig"]["LogConfig"]["Type"] == "syslog"
    assert (container_dir(engine, doc["Id"]) / "container-cached.log").stat().st_size > 0


def test_syslog_tcp_and_unix_default_format(engine, tmp_path) -> None:
    pid = engine_pid(engine)
    line = r"<%d>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d %s\[%d\]: %s\n"
    with stream_server(socket.AF_INET, ("127.0.0.1", 0)) as (listener, got):
        port = listener.getsockname()[1]
        ok(engine, "run", "--name", "systcp", "--log-driver", "syslog", "--log-opt",
           f"syslog-address=tcp://127.0.0.1:{port}", "--log-opt", "syslog-format=rfc3164", "busybox", "sh", "-c",
           "echo one; echo two")
        cid = ok(engine, "inspect", "-f", "{{.Id}}", "systcp").strip()
        data = received(got, b"two\n").decode()
        host = re.escape(socket.gethostname())
        assert re.fullmatch(line % (30, host + " " + cid[:12], pid, "one") + line % (30, host + " " + cid[:12],
                                                                                     pid, "two"), data), data
    path = str(tmp_path / "syslog.sock")
    with stream_server(socket.AF_UNIX, path) as (_, got):
        ok(engine, "run", "--name", "sysunix", "--log-driver", "syslog", "--log-opt", f"syslog-address=unix://{path}",
           "busybox", "sh", "-c", SCRIPT)
        cid = ok(engine, "inspect", "-f", "{{.Id}}", "sysunix").strip()
        data = received(got, b"tail\n").decode()
        lines = data.splitlines(keepends=True)
        assert len(lines) == 3, data
        for text, (priority, body) in zip(sorted(lines, key=lambda x: x.split(": ", 1)[1]),
                                          [(30, "hello"), (27, "oops <&>"), (30, "tail")]):
            assert re.fullmatch(line % (priority, cid[:12], pid, body), text), text
    assert_cached(engine, "sysunix")


def test_syslog_refusals_and_unreachable_server(engine, tmp_path) -> None:
    for opts, words in ((["syslog-address=http://x"], "syslog-address should be in form proto://address, got http://x"),
                        (["syslog-facility=bogus"], "invalid syslog facility"),
                        (["syslog-facility=24"], "invalid syslog facility"),
                        (["syslog-format=bogus"], "Invalid syslog format"),
                        (["max-size=1m"], "unknown log opt 'max-size' for syslog log driver"),
                        (["syslog-address=udp://127.0.0.1:5", "syslog-tls-ca-cert=/x"],
                         '"syslog-tls-ca-cert" is only valid with a tcp+tls:// syslog-address'),
                        ([f"syslog-address=unix://{tmp_path}/none"],
                         f"stat {tmp_path}/none: no such file or directory"),
                        (["cache-disabled=maybe"], "invalid value for option cache-disabled: maybe")):
        refused(engine, "syslog", opts, words)
    port = unused_port()
    bad = cli(engine, "run", "--name", "unreached", "--log-driver", "syslog", "--log-opt",
              f"syslog-address=tcp://127.0.0.1:{port}", "busybox", "echo", "x")
    assert bad.returncode == 125
    assert (f"failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused"
            in bad.stderr)
    status, _, body = curl(engine, "POST", "/v1.41/containers/unreached/start")
    assert status == 500 and "failed to initialize logging driver" in json.loads(body)["message"]


def test_gelf_udp_fields_compression_and_chunks(engine) -> None:
    server = udp_server()
    port = server.getsockname()[1]
    for kind, unpack in (("gzip", gzip.decompress), ("zlib", zlib.decompress), ("none", lambda b: b)):
        opts = [f"gelf-address=udp://127.0.0.1:{port}", f"gelf-compression-type={kind}", "labels=team",
                "env=STAGE", "tag={{.Name}}"]
        name = f"gelf{kind}"
        ok(engine, "run", "--name", name, "--label", "team=core", "-e", "STAGE=t", "--log-driver", "gelf",
           *[arg for o in opts for arg in ("--log-opt", o)], "busybox", "sh", "-c", SCRIPT)
        doc = json.loads(ok(engine, "inspect", name))[0]
        raw = datagrams(server, 3)
        if kind == "gzip":  # Go's gzip header: no time, BestSpeed (gelf's default level), OS unknown
            assert all(r.startswith(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff") for r in raw)
        messages = sorted((unpack(r) for r in raw), key=lambda m: json.loads(m)["short_message"])
        assert [json.loads(m)["short_message"] for m in messages] == ["hello", "oops <&>", "tail"]
        first = messages[0].decode()
        assert first.startswith('{"version":"1.1","host":%s,"short_message":"hello","timestamp":'
                                % json.dumps(socket.gethostname()))
        m = json.loads(first)
        assert list(m) == ["version", "host", "short_message", "timestamp", "level", "_STAGE", "_command",
                           "_container_id", "_container_name", "_created", "_image_id", "_image_name", "_tag",
                           "_team"]
        assert (m["level"], json.loads(messages[1])["level"]) == (6, 3)
        assert abs(m["timestamp"] - time.time()) < 60 and round(m["timestamp"], 3) == m["timestamp"]
        assert (m["_container_id"], m["_container_name"], m["_tag"], m["_STAGE"], m["_team"]) == \
            (doc["Id"], name, name, "t", "core")
        assert (m["_image_id"], m["_image_name"], m["_created"]) == (doc["Image"], "busybox", doc["Created"])
        assert m["_command"] == "sh -c " + SCRIPT and "\\u003c\\u0026\\u003e" in messages[1].decode()
        assert_cached(engine, name)
    # Past 1420 bytes a datagram is cut into GELF chunks: magic, an 8-byte ID, sequence number and count.
    ok(engine, "run", "--name", "gelfbig", "--log-driver", "gelf", "--log-opt", f"gelf-address=udp://127.0.0.1:{port}",
       "--log-opt", "gelf-compression-type=none", "busybox", "sh", "-c", "head -c 6000 /dev/zero | tr '\\0' a; echo")
    chunks = datagrams(server, 5)
    assert len(chunks) == 5 and all(c[:2] == b"\x1e\x0f" and c[2:10] == chunks[0][2:10] for c in chunks)
    assert [c[10:12] for c in chunks] == [bytes((n, 5)) for n in range(5)] and len(chunks[0]) == 1420
    assert json.loads(b"".join(c[12:] for c in chunks))["short_message"] == "a" * 6000


def test_gelf_tcp_and_refusals(engine) -> None:
    with stream_server(socket.AF_INET, ("127.0.0.1", 0)) as (listener, got):
        port = listener.getsockname()[1]
        ok(engine, "run", "--name", "gelftcp", "--log-driver", "gelf", "--log-opt",
           f"gelf-address=tcp://127.0.0.1:{port}", "busybox", "sh", "-c", "echo one; echo two")
        data = received(got, b"\x00", timeout=10)
        deadline = time.monotonic() + 10
        while data.count(b"\x00") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            data = b"".join(got)
    assert [json.loads(m)["short_message"] for m in data.split(b"\x00")[:-1]] == ["one", "two"]
    for opts, words in (([], "gelf-address is a required parameter"),
                        (["gelf-address=unix:///x"], "gelf: endpoint needs to be TCP or UDP"),
                        (["gelf-address=udp://x"], "gelf: please provide gelf-address as proto://host:port"),
                        (["gelf-address=udp://127.0.0.1:5", "gelf-compression-type=lz4"],
                         'unknown value "lz4" for log opt "gelf-compression-type" for gelf log driver'),
                        (["gelf-address=udp://127.0.0.1:5", "gelf-compression-level=10"],
                         'unknown value "10" for log opt "gelf-compression-level"'),
                        (["gelf-address=udp://127.0.0.1:5", "gelf-tcp-max-reconnect=3"],
                         '"gelf-tcp-max-reconnect" is only valid for TCP'),
                        (["gelf-address=tcp://127.0.0.1:5", "gelf-compression-type=gzip"],
                         "compression is only supported on UDP"),
                        (["gelf-address=tcp://127.0.0.1:5", "gelf-tcp-reconnect-delay=-1"],
                         '"gelf-tcp-reconnect-delay" must be a positive integer'),
                        (["gelf-address=udp://127.0.0.1:5", "bogus=1"], 'unknown log opt "bogus" for gelf log driver')):
        args = [arg for o in opts for arg in ("--log-opt", o)]
        bad = cli(engine, "create", "--log-driver", "gelf", *args, "busybox", "true")
        assert bad.returncode != 0 and words in bad.stderr, (opts, bad.stderr)
    bad = cli(engine, "run", "--log-driver", "gelf", "--log-opt", f"gelf-address=tcp://127.0.0.1:{port}",
              "busybox", "true")
    assert bad.returncode == 125 and (f"failed to initialize logging driver: gelf: cannot connect to GELF endpoint: "
                                      f"127.0.0.1:{port} dial tcp 127.0.0.1:{port}: connect: connection refused"
                                      in bad.stderr)


def test_cache_options(engine) -> None:
    server = udp_server()
    address = f"syslog-address=udp://127.0.0.1:{server.getsockname()[1]}"
    ok(engine, "run", "--name", "uncached", "--log-driver", "syslog", "--log-opt", address,
       "--log-opt", "cache-disabled=true", "busybox", "echo", "gone")
    assert datagrams(server, 1)[0].endswith(b": gone\n")
    out = cli(engine, "logs", "uncached")
    assert out.returncode != 0 and "configured logging driver does not support reading" in out.stderr
    cid = ok(engine, "inspect", "-f", "{{.Id}}", "uncached").strip()
    assert not (container_dir(engine, cid) / "container-cached.log").exists()
    ok(engine, "run", "--name", "smallcache", "--log-driver", "syslog", "--log-opt", address, "--log-opt",
       "cache-max-size=10k", "--log-opt", "cache-max-file=2", "--log-opt", "cache-compress=false",
       "busybox", "sh", "-c", "i=1; while [ $i -le 5000 ]; do echo $i; i=$((i+1)); done")
    cid = ok(engine, "inspect", "-f", "{{.Id}}", "smallcache").strip()
    d = container_dir(engine, cid)
    assert sorted(p.name for p in d.glob("container-cached.log*")) == ["container-cached.log",
                                                                       "container-cached.log.1"]
    assert all(p.stat().st_size <= 10_000 for p in d.glob("container-cached.log*"))
    assert ok(engine, "logs", "--tail", "1", "smallcache") == "5000\n"


def test_a_server_going_down_holds_up_neither_container_nor_cache(engine) -> None:
    with stream_server(socket.AF_INET, ("127.0.0.1", 0)) as (listener, got):
        port = listener.getsockname()[1]
        ok(engine, "run", "-d", "--name", "downstream", "--log-driver", "syslog", "--log-opt",
           f"syslog-address=tcp://127.0.0.1:{port}", "busybox", "sh", "-c",
           "echo first; sleep 1; i=0; while [ $i -lt 200 ]; do echo $i; i=$((i+1)); done")
        received(got, b"first\n")
    # The listener is gone (its open connection too, once the engine writes to it): the lines keep coming.
    started = time.monotonic()
    wait_exit(engine, "downstream")
    assert time.monotonic() - started < 15
    assert ok(engine, "logs", "downstream").split() == ["first", *map(str, range(200))]
    deadline = time.monotonic() + 10
    while "sending the logs of container=" not in engine.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "to syslog failed" in engine.log()


# fluentd and journald ----------------------------------------------------


def events(data: bytes) -> list[list]:
    out, at = [], 0
    while at < len(data):
        value, at = decode(data, at)
        out.append(value)
    return out


def fluentd_events(got: list[bytes], count: int, timeout: float = 10) -> list[list]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(IndexError, msgpack.Incomplete):
            if len(found := events(b"".join(got))) >= count:
                return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} events: {b''.join(got)!r}")


def test_fluentd_forward_protocol(engine, tmp_path) -> None:
    with stream_server(socket.AF_INET, ("127.0.0.1", 0)) as (listener, got):
        port = listener.getsockname()[1]
        ok(engine, "run", "--name", "fluent", "--label", "team=core", "-e", "STAGE=t", "--log-driver", "fluentd",
           "--log-opt", f"fluentd-address=127.0.0.1:{port}", "--log-opt", "labels=team", "--log-opt", "env=STAGE",
           "busybox", "sh", "-c", SCRIPT)
        cid = ok(engine, "inspect", "-f", "{{.Id}}", "fluent").strip()
        sent = fluentd_events(got, 4)
    # As dockerd 20.10 sent them: [tag, seconds, record, {}]; the tag the short ID; the empty line sent too;
    # the unfinished last line a partial message that is not the last.
    assert len(sent) == 4 and all(e[0] == cid[:12] and isinstance(e[1], int) and e[3] == {} for e in sent)
    assert abs(sent[0][1] - time.time()) < 60
    base = {"container_id": cid, "container_name": "/fluent", "team": "core", "STAGE": "t"}
    records = sorted((e[2] for e in sent), key=lambda r: (r["source"], r["log"]))
    assert records[:3] == [{**base, "source": "stderr", "log": "oops <&>"}, {**base, "source": "stdout", "log": ""},
                           {**base, "source": "stdout", "log": "hello"}]
    tail = records[3]
    assert re.fullmatch("[0-9a-f]{64}", tail.pop("partial_id"))
    assert tail == {**base, "source": "stdout", "log": "tail", "partial_message": "true", "partial_ordinal": "1",
                    "partial_last": "false"}
    assert list(sent[0][2])[:4] == ["container_id", "container_name", "source", "log"]
    assert_cached(engine, "fluent")
    doc = json.loads(ok(engine, "inspect", "fluent"))[0]
    assert doc["LogPath"] == "" and doc["HostConfig"]["LogConfig"] == {
        "Type": "fluentd", "Config": {"fluentd-address": f"127.0.0.1:{port}", "labels": "team", "env": "STAGE"}}
    # Over a unix socket, with sub-second times, a tag of the user's and a line past 16 KiB in pieces.
    path = str(tmp_path / "fluent.sock")
    with stream_server(socket.AF_UNIX, path) as (_, got):
        ok(engine, "run", "--name", "fluentunix", "--log-driver", "fluentd", "--log-opt",
           f"fluentd-address=unix://{path}", "--log-opt", "fluentd-sub-second-precision=true", "--log-opt",
           "tag=app.{{.Name}}", "busybox", "sh", "-c",
           "head -c 20000 /dev/zero | tr '\\0' a; echo; echo done")
        sent = fluentd_events(got, 3)
    assert [e[0] for e in sent] == ["app.fluentunix"] * 3
    seconds, nanoseconds = sent[0][1]
    assert abs(seconds - time.time()) < 60 and 0 <= nanoseconds < 10**9
    pieces = [e[2] for e in sent[:2]]
    assert "".join(p["log"] for p in pieces) == "a" * 20000 and len(pieces[0]["log"]) == 16384
    assert [(p["partial_ordinal"], p["partial_last"]) for p in pieces] == [("1", "false"), ("2", "true")]
    assert pieces[0]["partial_id"] == pieces[1]["partial_id"] and sent[2][2]["log"] == "done"
    assert "partial_message" not in sent[2][2]


@contextlib.contextmanager
def acking_server() -> Iterator[tuple[int, list[list]]]:
    """A Fluentd forward server that answers each event's chunk with its ack."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    got: list[list] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            data = b""
            while more := conn.recv(65536):
                data += more
                with contextlib.suppress(IndexError, msgpack.Incomplete):
                    while data:
                        value, end = decode(data)
                        data = data[end:]
                        got.append(value)
                        conn.sendall(msgpack.pack({"ack": value[3]["chunk"]}))

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1], got
    finally:
        listener.close()


def test_fluentd_request_ack(engine) -> None:
    with acking_server() as (port, got):
        ok(engine, "run", "--name", "acked", "--log-driver", "fluentd", "--log-opt",
           f"fluentd-address=127.0.0.1:{port}", "--log-opt", "fluentd-request-ack=true", "busybox", "sh", "-c",
           "echo one; echo two")
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [e[2]["log"] for e in got] == ["one", "two"]
    # The chunk ID: the time (8 bytes, little-endian) and 8 random bytes, in base64, as fluent-logger makes it.
    chunks = [base64.b64decode(e[3]["chunk"]) for e in got]
    assert all(len(c) == 16 and abs(struct.unpack("<q", c[:8])[0] - time.time()) < 60 for c in chunks)
    assert chunks[0] != chunks[1]


def test_fluentd_refusals_unreachable_and_async(engine) -> None:
    for opts, words in ((["fluentd-address=http://x"],
                         'invalid fluentd-address http://x: strconv.Atoi: parsing "//x": invalid syntax'),
                        (["fluentd-retry-wait=5"], 'time: missing unit in duration "5"'),
                        (["fluentd-max-retries=-1"], 'strconv.ParseUint: parsing "-1": invalid syntax'),
                        (["fluentd-buffer-limit=x"], "invalid size: 'x'"),
                        (["fluentd-async=true", "fluentd-async-connect=true"],
                         "conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect"),
                        (["max-size=1m"], "unknown log opt 'max-size' for fluentd log driver")):
        refused(engine, "fluentd", opts, words)
    port = unused_port()
    bad = cli(engine, "run", "--log-driver", "fluentd", "--log-opt", f"fluentd-address=127.0.0.1:{port}",
              "busybox", "true")
    assert bad.returncode == 125
    assert f"failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused" in bad.stderr
    # fluentd-async: the container runs without the server, its lines kept for docker logs and sent once it is up.
    ok(engine, "run", "-d", "--name", "later", "--log-driver", "fluentd", "--log-opt",
       f"fluentd-address=127.0.0.1:{port}", "--log-opt", "fluentd-async=true", "--log-opt",
       "fluentd-retry-wait=100ms", "busybox", "sh", "-c",
       "echo early; sleep 3; echo late")
    time.sleep(1)
    assert ok(engine, "logs", "later") == "early\n"
    with stream_server(socket.AF_INET, ("127.0.0.1", port)) as (_, got):
        sent = fluentd_events(got, 2)
    assert [e[2]["log"] for e in sent] == ["early", "late"]


def journal_entries(sock: socket.socket, count: int) -> list[dict[str, bytes]]:
    out = []
    for raw in datagrams(sock, count):
        fields, at = {}, 0
        while at < len(raw):
            end = raw.index(b"\n", at)
            key, eq, value = raw[at:end].partition(b"=")
            if eq:
                at = end + 1
            else:  # the binary-safe form: the length, the value, a newline
                size = struct.unpack("<Q", raw[end + 1:end + 9])[0]
                value, at = raw[end + 9:end + 9 + size], end + 10 + size
            fields[key.decode()] = value
        out.append(fields)
    return out


def test_journald(engine, journal_path) -> None:
    bad = cli(engine, "run", "--log-driver", "journald", "busybox", "true")
    assert bad.returncode == 125
    assert "failed to initialize logging driver: journald is not enabled on this host" in bad.stderr
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(journal_path))
    journal.settimeout(0.2)
    try:
        ok(engine, "run", "--name", "journaled", "--label", "com.example.team=core", "--label", "note=two\nlines",
           "-e", "stage=t", "--log-driver", "journald", "--log-opt", "labels=com.example.team,note",
           "--log-opt", "env=stage", "--log-opt", "tag={{.Name}}", "busybox", "sh", "-c", SCRIPT)
        cid = ok(engine, "inspect", "-f", "{{.Id}}", "journaled").strip()
        got = journal_entries(journal, 4)
        assert_logs = cli(engine, "logs", "journaled")
    finally:
        journal.close()
        os.unlink(journal_path)
    base = {"CONTAINER_ID": cid[:12].encode(), "CONTAINER_ID_FULL": cid.encode(), "CONTAINER_NAME": b"journaled",
            "CONTAINER_TAG": b"journaled", "IMAGE_NAME": b"busybox", "SYSLOG_IDENTIFIER": b"journaled",
            "COM_EXAMPLE_TEAM": b"core", "NOTE": b"two\nlines", "STAGE": b"t"}
    assert all(list(e)[:2] == ["PRIORITY", "MESSAGE"] for e in got)
    by_message = {e["MESSAGE"]: e for e in got}
    assert set(by_message) == {b"hello", b"oops <&>", b"", b"tail"}
    assert by_message[b"hello"] == {"PRIORITY": b"6", "MESSAGE": b"hello", **base}
    assert by_message[b"oops <&>"]["PRIORITY"] == b"3" and by_message[b""]["PRIORITY"] == b"6"
    assert by_message[b"tail"] == {"PRIORITY": b"6", "MESSAGE": b"tail", **base,
                                   "CONTAINER_PARTIAL_MESSAGE": b"true"}
    assert (assert_logs.stdout, assert_logs.stderr) == ("hello\n\ntail", "oops <&>\n")
    bad = cli(engine, "create", "--log-driver", "journald", "--log-opt", "max-size=1m", "busybox", "true")
    assert bad.returncode != 0 and "unknown log opt 'max-size' for journald log driver" in bad.stderr
