"""Log drivers: json-file in Docker's own on-disk format with rotation, local, none; `docker logs` over them."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import time
from pathlib import Path

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers

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
    assert doc["HostConfig"]["LogConfig"]["Config"] == {"max-size": "20m", "max-file": "5", "compress": "true"}


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
    assert doc["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "20m", "max-file": "5"}}
    info = json.loads(ok(engine, "info", "--format", "{{json .}}"))
    assert info["LoggingDriver"] == "json-file" and "json-file" in info["Plugins"]["Log"]


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
