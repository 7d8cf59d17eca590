"""`ssh://[user@]host[:port]` hosts, as the docker CLI reaches them: `ssh ... HOST docker system dial-stdio`, the
remote docker CLI relaying its stdio to its daemon. Each connection is one ssh process whose stdin and stdout
are one end of a socket pair, so the rest of the client sees a socket (and a half-close is the end of stdin)."""
from __future__ import annotations

import contextlib
import io
import socket
import subprocess
from urllib.parse import urlsplit


def ssh_command(host: str) -> list[str]:
    """docker's ssh invocation for the URL: its user and port, and nothing after the host."""
    url = urlsplit(host)
    if not url.hostname:
        raise ValueError(f"invalid SSH URL {host!r}: no host name")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ValueError(f"invalid SSH URL {host!r}: extra path after the host")
    if url.password:
        raise ValueError(f"invalid SSH URL {host!r}: plain-text password is not supported")
    command = ["ssh", "-o", "ConnectTimeout=30", "-T"]
    if url.username:
        command += ["-l", url.username]
    if url.port:
        command += ["-p", str(url.port)]
    return [*command, "--", url.hostname, "docker", "system", "dial-stdio"]


class SSHConnection:
    """What api.Response and api.Hijacked use of a socket, through an ssh process."""

    def __init__(self, command: list[str]) -> None:
        self._sock, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(command, stdin=theirs.fileno(), stdout=theirs.fileno(),
                                             close_fds=True)
        except OSError as e:
            self._sock.close()
            raise OSError(f"cannot run {command[0]}: {e.strerror}") from None
        finally:
            theirs.close()

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return self._sock.makefile("rb")

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            self._process.wait()
