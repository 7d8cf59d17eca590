"""`docker run -i` (StdinOnce, no terminal): only the end of the attached client's stdin closes the process's
stdin, as with dockerd; another client attached without stdin may come and go meanwhile."""
from __future__ import annotations

import json
import subprocess

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import ok

engine, no_leftovers = containers.engine, containers.no_leftovers


# Ticks until told to go on, so a client provably has the output (and its connection) before it leaves.
SCRIPT = "while [ ! -f /go ]; do echo tick; sleep 0.2; done; cat; echo done"


def test_a_stdinless_attach_leaving_does_not_close_stdin(engine) -> None:
    runner = subprocess.Popen(["docker", "run", "-i", "--name", "once", "busybox", "sh", "-c", SCRIPT],
                              env=engine.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert runner.stdout is not None and runner.stdout.readline() == b"tick\n"
        watcher = subprocess.Popen(["docker", "attach", "--no-stdin", "once"], env=engine.env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert watcher.stdout is not None and watcher.stdout.readline() == b"tick\n"
        watcher.kill()
        watcher.wait(timeout=30)
        ok(engine, "exec", "once", "touch", "/go")
        out, err = runner.communicate(b"hello\n", timeout=60)
        assert runner.returncode == 0, err
        assert out.replace(b"tick\n", b"") == b"hello\ndone\n"
    finally:
        if runner.poll() is None:
            runner.kill()


def test_a_stdinless_attach_alone_leaving_does_not_close_stdin(engine) -> None:
    ok(engine, "create", "-i", "--name", "once2", "busybox", "sh", "-c", SCRIPT)
    assert json.loads(ok(engine, "inspect", "--format", "{{json .Config.StdinOnce}}", "once2")) is True
    ok(engine, "start", "once2")
    watcher = subprocess.Popen(["docker", "attach", "--no-stdin", "once2"], env=engine.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert watcher.stdout is not None and watcher.stdout.readline() == b"tick\n"
    watcher.kill()
    watcher.wait(timeout=30)
    ok(engine, "exec", "once2", "touch", "/go")
    typed = subprocess.run(["docker", "attach", "once2"], env=engine.env(), input=b"hello\n", capture_output=True,
                           timeout=60, check=False)
    assert typed.returncode == 0, typed.stderr
    assert typed.stdout.replace(b"tick\n", b"") == b"hello\ndone\n"
