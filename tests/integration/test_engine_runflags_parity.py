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
        {"Image": "busybox", "Cmd": ["true"], "MacAddress": "02:42:ac:11:00:99", "HostConfig": {"NetworkMode": "none"}}))
    assert status == 201, body
    assert json.loads(ok(engine, "inspect", "macless"))[0]["Config"]["MacAddress"] == "02:42:ac:11:00:99"
    ok(engine, "rm", "macless")
