"""What the streaming server needs from the runtime, and the requests it serves.

The CRI plugin implements StreamingBackend (exec in a container, attach to its stdio, dial a port
inside a sandbox's network namespace); the streaming server only moves bytes between the client's
streams and these calls.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


class InputStream(Protocol):
    async def read(self, n: int = 65536) -> bytes:
        """Up to n bytes; b"" at end of input."""
        ...


class OutputStream(Protocol):
    async def write(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


@dataclass(frozen=True)
class ExecRequest:
    container_id: str
    cmd: list[str]
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class AttachRequest:
    container_id: str
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class PortForwardRequest:
    sandbox_id: str
    # Ports the client may ask for; empty means any (as the CRI's PortForwardRequest.port says).
    ports: list[int] = field(default_factory=list)


class ExitError(Exception):
    """A command ran and exited non-zero; `code` is its exit status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class StreamingBackend(Protocol):
    """Calls are cancelled when the client goes away: exec may then kill its process, attach
    only detaches (the container keeps running)."""

    async def exec(self, container_id: str, cmd: list[str], tty: bool,
                   stdin: InputStream | None, stdout: OutputStream | None,
                   stderr: OutputStream | None,
                   resize: AsyncIterator[TerminalSize] | None) -> int:
        """Run cmd in the container, copy its stdio until it exits; its exit code.

        The backend reads stdin to its end (b"") and then closes the process's stdin. It returns
        once the process has exited and all its output has been written.
        """
        ...

    async def attach(self, container_id: str, tty: bool, stdin: InputStream | None,
                     stdout: OutputStream | None, stderr: OutputStream | None,
                     resize: AsyncIterator[TerminalSize] | None) -> None:
        """Join the container's main process stdio until it exits or the client goes."""
        ...

    async def port_forward(self, sandbox_id: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to `port` inside the sandbox's network namespace."""
        ...
