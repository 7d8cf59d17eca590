"""Run flags a differential audit against dockerd 20.10 found different (docs/compatibility.md, session 18): the
user resolved again at each start from the container's own files, seccomp's colon spelling, a MAC address
without a network."""
from __future__ import annotations

import json

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def test_the_user_is_looked_up_at_each_start(engine, tmp_path) -> None:
    ok(engine, "create", "--name", "who", "--network", "none", "--user", "nobody", "busybox", "sh", "-c",
       'echo "$(id -u) $HOME"')
    assert ok(engine, "start", "-a", "who") == "65534 /home\n"
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:777:777:nobody:/nowhere:/bin/false\n")
    ok(engine, "cp", str(tmp_path / "passwd"), "who:/etc/passwd")
    assert ok(engine, "start", "-a", "who") == "777 /nowhere\n"
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    ok(engine, "cp", str(tmp_path / "passwd"), "who:/etc/passwd")
    gone = containers.cli(engine, "start", "who")
    assert gone.returncode == 1 and "unable to find user nobody" in gone.stderr
    ok(engine, "rm", "who")


def test_seccomp_colon_and_a_mac_address_without_network(engine) -> None:
    out = ok(engine, "run", "--rm", "--network", "none", "--security-opt", "seccomp:unconfined", "busybox", "grep",
             "^Seccomp:", "/proc/self/status")
    assert out.split() == ["Seccomp:", "0"]
    status, _, body = containers.curl(engine, "POST", "/containers/create?name=macless", json.dumps(
        {"Image": "busybox", "Cmd": ["true"], "MacAddress": "02:42:ac:11:00:99",
         "HostConfig": {"NetworkMode": "none"}}))
    assert status == 201, body
    assert json.loads(ok(engine, "inspect", "macless"))[0]["Config"]["MacAddress"] == "02:42:ac:11:00:99"
    ok(engine, "rm", "macless")


def test_a_user_the_image_lacks_is_looked_for_at_the_start(engine, tmp_path) -> None:
    # As dockerd: the container is made; its start finds the user once the container has it.
    out = containers.cli(engine, "run", "--name", "early", "--network", "none", "--user", "app", "busybox", "id", "-u")
    assert out.returncode == 125 and "unable to find user app: no matching entries in passwd file" in out.stderr
    assert json.loads(ok(engine, "inspect", "early"))[0]["State"]["Status"] == "created"
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:4242:4242:app:/home/app:/bin/sh\n")
    ok(engine, "cp", str(tmp_path / "passwd"), "early:/etc/passwd")
    assert ok(engine, "start", "-a", "early") == "4242\n"
    ok(engine, "rm", "early")


def test_a_detached_exec_that_cannot_start_says_so_as_dockerd(engine) -> None:
    ok(engine, "run", "-d", "--name", "host1", "--network", "none", "busybox", "sleep", "100")
    out = containers.cli(engine, "exec", "-d", "host1", "nosuchprog")
    assert out.returncode != 0
    assert "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuchprog\": " \
           "executable file not found in $PATH: unknown" in out.stderr, out.stderr
    status, _, body = containers.curl(engine, "POST", "/containers/host1/exec",
                                      json.dumps({"Cmd": ["true"], "AttachStdout": "yes"}))
    assert status == 400 and "AttachStdout" in json.loads(body)["message"]
    ok(engine, "rm", "-f", "host1")
