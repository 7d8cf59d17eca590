"""crictl exec, exec -it, attach and port-forward against pyruntimed: the streaming server on real tasks."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import termios
import time

import pytest
from cri_api.v1 import api_pb2 as cri

from tests.fixtures.cri import CRI

pytestmark = pytest.mark.timeout(300)


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} in {bytes(seen)!r}")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"terminal closed before {marker!r}: {bytes(seen)!r}")
            seen += chunk


def test_exec_attach_and_port_forward(cri_pod_network: CRI) -> None:
    c = cri_pod_network
    c.pull("busybox")
    pod_id, pod = c.run_pod("streams", host_network=False)
    cid = c.start_container(pod_id, pod, "shell", ["sh", "-c", "while true; do sleep 1; done"])
    server = c.start_container(pod_id, pod, "web", ["sh", "-c", "while true; do echo pong | nc -l -p 7000; done"])
    chatty = c.start_container(pod_id, pod, "chatty", ["sh", "-c", "read line; echo got $line"],
                               stdin=True, stdin_once=True)

    out = c.crictl("exec", cid, "sh", "-c", "echo plain; echo to-err >&2")
    assert out.stdout == "plain\n" and "to-err" in out.stderr
    failed = c.crictl("exec", cid, "sh", "-c", "exit 7", check=False)
    assert failed.returncode != 0 and "exit code 7" in failed.stderr
    piped = c.crictl("exec", "-i", cid, "sh", "-c", "wc -l", input="a\nb\nc\n")
    assert piped.stdout.strip() == "3"

    attached = subprocess.run([*c.crictl_args(), "attach", "-i", chatty], input="hello\n", capture_output=True,
                              text=True, timeout=60)
    assert "got hello" in attached.stdout, attached.stderr

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    proc = subprocess.Popen([*c.crictl_args(), "exec", "-it", cid, "sh", "-c",
                             "read x; stty size; read y; echo typed-$y; stty size"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    seen = bytearray()
    try:
        # The first size arrives when crictl starts: type until the shell reads a line at that size.
        time.sleep(1)
        os.write(master, b"go\r")
        _read_until(master, b"33 111", seen)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(proc.pid, signal.SIGWINCH)
        time.sleep(1)
        os.write(master, b"abc\r")
        _read_until(master, b"40 120", seen)
        assert b"typed-abc" in seen
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    forward = subprocess.Popen([*c.crictl_args(), "port-forward", pod_id, f"{local}:7000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert forward.stdout is not None
        assert "Forwarding from" in forward.stdout.readline()
        reply = b""
        deadline = time.monotonic() + 20
        while b"pong" not in reply and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", local), timeout=5) as conn:
                    conn.sendall(b"ping\n")
                    reply = conn.recv(64)
            except OSError:
                time.sleep(0.2)
        assert b"pong" in reply
    finally:
        forward.kill()
        forward.wait()
    assert c.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=server)).status.state == \
        cri.CONTAINER_RUNNING
