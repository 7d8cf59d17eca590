"""Attach and exec as dockerd does them: stdin across detaches, detach keys, websocket attach, exec inspect.

Driven by the real docker CLI (on a pseudo-terminal where a user would type) and the Docker SDK.
"""
from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import time

import aiohttp
import docker
import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_containers as containers

STREAMS = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}


# One engine for the module with busybox pulled, reset after each test.
engine, no_leftovers = containers.engine, containers.no_leftovers


def ok(engine: EngineDaemon, *args: str) -> str:
    out = subprocess.run(["docker", *args], env=engine.env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


class Terminal:
    """The docker CLI on a 30x100 pseudo-terminal, typed at like a user would."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe("docker", ["docker", *args], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.out = b""
        self.code: int | None = None

    def _read(self, deadline: float) -> bool:
        """Whatever the CLI printed next; False at its end."""
        if not select.select([self.fd], [], [], max(0.0, min(0.5, deadline - time.monotonic())))[0]:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return False
        self.out += data
        return bool(data)

    def expect(self, needle: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            assert time.monotonic() < deadline, f"{needle!r} never showed: {self.out!r}"
            assert self._read(deadline), f"the CLI ended before {needle!r} showed: {self.out!r}"

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            assert time.monotonic() < deadline, f"the CLI did not end: {self.out!r}"
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def close(self) -> None:
        if self.code is None:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
            os.close(self.fd)


def read_frames(sock: socket.socket, needle: bytes | None, timeout: float = 30) -> list[tuple[int, bytes]]:
    """stdcopy frames from a hijacked socket until their payloads hold `needle`, or (None) until the stream ends."""
    sock.settimeout(timeout)
    buf, frames = b"", []
    while needle is None or needle not in b"".join(p for _, p in frames):
        chunk = sock.recv(65536)
        if not chunk:
            assert needle is None, f"the stream ended before {needle!r}: {frames!r}"
            break
        buf += chunk
        while len(buf) >= 8 and len(buf) >= 8 + int.from_bytes(buf[4:8], "big"):
            size = int.from_bytes(buf[4:8], "big")
            frames.append((buf[0], buf[8:8 + size]))
            buf = buf[8 + size:]
    assert buf == b"", f"a partial frame: {buf!r}"
    return frames


def read_raw(sock: socket.socket, needle: bytes | None, timeout: float = 30) -> bytes:
    """Raw bytes from a hijacked socket until they hold `needle`, or (None) until the stream ends."""
    sock.settimeout(timeout)
    out = b""
    while needle is None or needle not in out:
        chunk = sock.recv(65536)
        if not chunk:
            assert needle is None, f"the stream ended before {needle!r}: {out!r}"
            break
        out += chunk
    return out


def raw_socket(s: object) -> socket.socket:
    """The socket under the SDK's hijacked response."""
    return s._sock  # type: ignore[attr-defined,no-any-return]


# stdin across detaches --------------------------------------------------------------------------


def test_tty_stdin_reaches_the_shell_after_detach_and_attach(engine):
    """`docker run -it`, Ctrl-P Ctrl-Q, `docker attach`: what is typed reaches the shell; `exit 5` is its code."""
    run = Terminal(engine.env(), "run", "-it", "--network", "none", "--name", "xsh", "busybox", "sh")
    try:
        run.expect(b"# ")
        run.type(b"echo $((40+2))\r")
        run.expect(b"42\r\n")
        run.type(b"\x10\x11")
        assert run.wait() == 0, run.out
    finally:
        run.close()
    state = json.loads(ok(engine, "inspect", "xsh"))[0]
    assert state["Config"]["StdinOnce"] and state["Config"]["Tty"] and state["State"]["Running"]

    attach = Terminal(engine.env(), "attach", "xsh")
    try:
        attach.type(b"echo $((6*7))-again\r")
        attach.expect(b"42-again\r\n")
        attach.type(b"exit 5\r")
        assert attach.wait() == 5, attach.out
    finally:
        attach.close()
    assert ok(engine, "wait", "xsh") == "5\n"
    assert json.loads(ok(engine, "inspect", "xsh"))[0]["State"]["ExitCode"] == 5


def test_non_tty_stdin_stays_open_across_attaches(sdk):
    """An OpenStdin container without StdinOnce: a client leaving does not close the process's stdin."""
    c = sdk.containers.run("busybox", ["sh"], stdin_open=True, detach=True, network_mode="none")
    first = sdk.api.attach_socket(c.id, params=STREAMS)
    raw_socket(first).sendall(b"echo $((40+2))\n")
    assert read_frames(raw_socket(first), b"42\n") == [(1, b"42\n")]
    sock = raw_socket(first)
    sock.shutdown(socket.SHUT_RDWR)
    first.close()
    sock.close()

    second = sdk.api.attach_socket(c.id, params=STREAMS)
    raw_socket(second).sendall(b"echo $((6*7))-again; exit 5\n")
    assert read_frames(raw_socket(second), None) == [(1, b"42-again\n")]
    assert c.wait(timeout=30)["StatusCode"] == 5


def test_stdin_once_closes_the_stdin_when_the_client_ends_it(sdk):
    # The SDK asks for StdinOnce when it attaches stdin (not detach), as `docker run -i` does.
    created = sdk.api.create_container("busybox", ["sh", "-c", "cat; echo done"], stdin_open=True,
                                       host_config=sdk.api.create_host_config(network_mode="none"))
    c = sdk.containers.get(created["Id"])
    assert c.attrs["Config"]["StdinOnce"] is True
    sock = sdk.api.attach_socket(c.id, params=STREAMS)
    c.start()
    raw_socket(sock).sendall(b"piped\n")
    raw_socket(sock).shutdown(socket.SHUT_WR)
    assert b"".join(p for _, p in read_frames(raw_socket(sock), None)) == b"piped\ndone\n"
    assert c.wait(timeout=30)["StatusCode"] == 0


# detach keys -------------------------------------------------------------------------------------


def test_detach_keys_from_the_cli_config_file(engine, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"detachKeys": "ctrl-x,x"}))
    env = dict(engine.env(), DOCKER_CONFIG=str(tmp_path))
    ok(engine, "run", "-dit", "--network", "none", "--name", "keys", "busybox", "sh")

    attach = Terminal(env, "attach", "keys")
    try:
        attach.type(b"echo $((40+2))\r")
        attach.expect(b"42\r\n")
        attach.type(b"\x18x")
        # The CLI sees the keys itself (and reports them as an error from `attach`).
        assert attach.wait() == 1 and b"read escape sequence" in attach.out, attach.out
    finally:
        attach.close()

    exec_ = Terminal(env, "exec", "-it", "keys", "sh")
    try:
        exec_.expect(b"# ")
        exec_.type(b"echo $((6*7))-exec\r")
        exec_.expect(b"42-exec\r\n")
        exec_.type(b"\x18x")
        assert exec_.wait() == 1 and b"read escape sequence" in exec_.out, exec_.out
    finally:
        exec_.close()
    assert ok(engine, "inspect", "-f", "{{.State.Running}}", "keys") == "true\n"


def test_detach_keys_on_attach_and_exec_through_the_api(sdk):
    t0 = int(time.time()) - 1
    c = sdk.containers.run("busybox", ["sh"], stdin_open=True, tty=True, detach=True, network_mode="none")
    sock = sdk.api.attach_socket(c.id, params={**STREAMS, "detachKeys": "ctrl-x,x"})
    raw_socket(sock).sendall(b"echo $((40+2))\n")
    read_raw(raw_socket(sock), b"42\r\n")
    raw_socket(sock).sendall(b"\x10\x11\x18x")
    read_raw(raw_socket(sock), None)
    c.reload()
    assert c.status == "running"

    exec_id = sdk.api.exec_create(c.id, ["sh"], stdin=True, tty=True, detach_keys="ctrl-a,DEL")["Id"]
    sock = sdk.api.exec_start(exec_id, socket=True, tty=True)
    raw_socket(sock).sendall(b"echo $((6*7))-exec\n")
    read_raw(raw_socket(sock), b"42-exec\r\n")
    raw_socket(sock).sendall(b"\x01\x7f")
    read_raw(raw_socket(sock), None)
    info = sdk.api.exec_inspect(exec_id)
    assert info["Running"] is True and info["ExitCode"] is None
    assert base64.b64decode(info["DetachKeys"]) == b"\x01\x7f"
    actions = [ev["Action"] for ev in sdk.events(since=t0, until=int(time.time()) + 1, decode=True,
                                                  filters={"container": c.id})]
    assert "detach" in actions and "exec_detach" in actions, actions


def test_invalid_detach_keys_are_refused(sdk):
    c = sdk.containers.run("busybox", ["sleep", "1000"], detach=True, network_mode="none")
    with pytest.raises(docker.errors.APIError) as attach:
        sdk.api.attach_socket(c.id, params={**STREAMS, "detachKeys": "ctrl-xx"})
    assert attach.value.status_code == 400
    assert attach.value.explanation == "Invalid detach keys (ctrl-xx) provided"
    with pytest.raises(docker.errors.APIError) as exec_:
        sdk.api.exec_create(c.id, ["true"], detach_keys="Ctrl-P")
    assert exec_.value.status_code == 400
    assert exec_.value.explanation == "Invalid escape keys (Ctrl-P) provided"


# websocket attach --------------------------------------------------------------------------------


async def _ws_session(engine: EngineDaemon, path: str, send: list[bytes], needle: bytes) -> tuple[set, bytes]:
    """The message types and the bytes received on the websocket until they hold `needle`."""
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=engine.address)) as s:
        async with s.ws_connect(f"http://docker{path}") as ws:
            for data in send:
                await ws.send_bytes(data)
            kinds, got = set(), b""
            while needle not in got:
                msg = await ws.receive(timeout=30)
                assert msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), (msg, got)
                kinds.add(msg.type)
                got += msg.data if isinstance(msg.data, bytes) else msg.data.encode()
            return kinds, got


def test_websocket_attach_echoes_through_cat(engine, sdk):
    c = sdk.containers.run("busybox", ["sh", "-c", "echo early; echo warn >&2; exec cat"], stdin_open=True,
                           detach=True, network_mode="none")
    for line in c.logs(stream=True, follow=True):
        if b"early" in line:
            break
    query = "logs=1&stream=1&stdin=1&stdout=1&stderr=1"
    kinds, got = asyncio.run(_ws_session(engine, f"/containers/{c.id}/attach/ws?{query}", [b"hello\n"],
                                         b"hello\n"))
    assert kinds == {aiohttp.WSMsgType.BINARY}
    # Raw, never multiplexed: the history of both streams, then the echo.
    assert sorted(got.splitlines()) == [b"early", b"hello", b"warn"]

    # Before API 1.28 dockerd sent text messages.
    kinds, got = asyncio.run(_ws_session(engine, f"/v1.27/containers/{c.id}/attach/ws?stream=1", [b"old\n"],
                                         b"old\n"))
    assert (kinds, got) == ({aiohttp.WSMsgType.TEXT}, b"old\n")


# exec inspect ------------------------------------------------------------------------------------


def test_exec_inspect_reports_what_was_asked(sdk):
    c = sdk.containers.run("busybox", ["sleep", "1000"], detach=True, network_mode="none")
    exec_id = sdk.api.exec_create(c.id, ["sh", "-c", "echo out; echo err >&2; exit 3"], user="root",
                                  privileged=False, detach_keys="ctrl-x,x")["Id"]
    assert sdk.api.exec_inspect(exec_id) == {
        "ID": exec_id, "Running": False, "ExitCode": None,
        "ProcessConfig": {"tty": False, "entrypoint": "sh", "arguments": ["-c", "echo out; echo err >&2; exit 3"],
                          "privileged": False, "user": "root"},
        "OpenStdin": False, "OpenStdout": True, "OpenStderr": True, "CanRemove": False, "ContainerID": c.id,
        "DetachKeys": base64.b64encode(b"\x18x").decode(), "Pid": 0,
    }
    # Without a terminal the hijacked stream is multiplexed.
    sock = sdk.api.exec_start(exec_id, socket=True)
    frames = read_frames(raw_socket(sock), None)
    assert sorted(frames) == [(1, b"out\n"), (2, b"err\n")]
    done = sdk.api.exec_inspect(exec_id)
    assert (done["Running"], done["ExitCode"]) == (False, 3) and done["Pid"] > 0

    tty_id = sdk.api.exec_create(c.id, ["sh"], stdin=True, stderr=False, tty=True)["Id"]
    info = sdk.api.exec_inspect(tty_id)
    assert info["ProcessConfig"] == {"tty": True, "entrypoint": "sh", "arguments": [], "privileged": False}
    assert (info["OpenStdin"], info["OpenStdout"], info["OpenStderr"], info["DetachKeys"]) == (True, True, False, "")
    sock = sdk.api.exec_start(tty_id, socket=True, tty=True)
    raw_socket(sock).sendall(b"echo $((40+2)); exit 4\n")
    out = read_raw(raw_socket(sock), None)
    assert b"42\r\n" in out and not out.startswith(b"\x01\x00\x00\x00"), out
    assert sdk.api.exec_inspect(tty_id)["ExitCode"] == 4


def test_hijacked_exec_start_content_type(engine, sdk):
    """From API 1.42 the 101 names the multiplexed framing of a stream without a terminal (dockerd 20.10: 1.41)."""
    c = sdk.containers.run("busybox", ["sleep", "1000"], detach=True, network_mode="none")
    newest = tuple(int(n) for n in sdk.version()["ApiVersion"].split("."))
    untty = "application/vnd.docker.multiplexed-stream" if newest >= (1, 42) else "application/vnd.docker.raw-stream"
    for tty, expected in ((False, untty), (True, "application/vnd.docker.raw-stream")):
        exec_id = sdk.api.exec_create(c.id, ["true"], tty=tty)["Id"]
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(engine.address)
            s.sendall(b"POST /exec/%s/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (exec_id.encode(), len(body), body))
            head = read_raw(s, b"\r\n\r\n").decode()
        assert head.startswith("HTTP/1.1 101 UPGRADED\r\n"), head
        assert f"Content-Type: {expected}\r\n" in head, head
