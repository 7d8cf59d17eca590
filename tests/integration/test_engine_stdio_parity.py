"""Interactive and piped use of the docker CLI that behaved otherwise than on dockerd 20.10, each shown behaving
as there (docs/compatibility.md, session 16)."""
from __future__ import annotations

import concurrent.futures
import socket

import docker

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, ok

engine, no_leftovers = containers.engine, containers.no_leftovers

# Far more than a process reads before it exits, and more than the engine buffers for it.
_FLOOD = "".join(f"{n}\n" for n in range(1, 1_000_001))


def test_stdin_a_process_leaves_unread_costs_no_output(engine) -> None:
    for _ in range(3):
        out = cli(engine, "run", "--rm", "-i", "--network", "none", "busybox", "head", "-n", "3", input=_FLOOD)
        assert (out.returncode, out.stdout, out.stderr) == (0, "1\n2\n3\n", "")
        out = cli(engine, "run", "--rm", "-i", "--network", "none", "busybox", "sh", "-c", "read x; exit 3",
                  input=_FLOOD)
        assert (out.returncode, out.stderr) == (3, "")
    ok(engine, "run", "-d", "--name", "reader", "--network", "none", "busybox", "sleep", "60")
    out = cli(engine, "exec", "-i", "reader", "head", "-n", "3", input=_FLOOD)
    assert (out.returncode, out.stdout, out.stderr) == (0, "1\n2\n3\n", "")
    ok(engine, "rm", "-f", "reader")


def test_top_with_columns_alone_lists_the_containers_processes(engine) -> None:
    # `ps -o pid,args` selects only processes on ps's own terminal: dockerd selects the container's with -q.
    ok(engine, "run", "-d", "-t", "--name", "toppy", "--network", "none", "busybox", "sleep", "300")
    lines = ok(engine, "top", "toppy", "-o", "pid,args").splitlines()
    assert lines[0].split() == ["PID", "COMMAND"] and lines[1].split()[1:] == ["sleep", "300"]
    # ps refuses -q beside `f`: the options are tried alone then, as dockerd does.
    assert "sleep 300" in ok(engine, "top", "toppy", "f")
    ok(engine, "rm", "-f", "toppy")


def test_an_attach_as_a_fast_container_ends_is_answered_and_waits_for_its_next_start(engine) -> None:
    """dockerpty's way (docker-compose run with COMPOSE_INTERACTIVE_NO_CLI): start, attach the streams, start
    again if it is not running. An attach caught between the process's end and the engine's record of it once got
    no answer at all, and compose hung."""
    api = docker.APIClient(base_url=engine.host)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    for i in range(5):
        c = api.create_container("busybox", ["echo", f"run{i}"],
                                 host_config=api.create_host_config(network_mode="none"))
        api.start(c)
        sock = pool.submit(api.attach_socket, c, {"stdout": 1, "stream": 1}).result(timeout=10)._sock
        if api.inspect_container(c)["State"]["Running"]:
            api.wait(c)
        data, ended = b"", False
        sock.settimeout(1)
        try:
            while chunk := sock.recv(4096):
                data += chunk
            ended = True
        except socket.timeout:
            pass
        if not ended:
            # Answered, and waiting for the next start: its output comes on this stream.
            api.start(c)
            sock.settimeout(10)
            try:
                while chunk := sock.recv(4096):
                    data += chunk
            except socket.timeout:
                pass
            assert f"run{i}".encode() in data, data
        # Else it attached to the run itself, as it ended: with dockerd too, it saw what came after the attach.
        sock.close()
        api.remove_container(c, force=True)
