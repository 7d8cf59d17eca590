"""Our stdio on a container's streams: output to stdout/stderr, stdin to a hijacked connection, terminal handling."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
from typing import Callable, Iterator

from cli.common.terminal import raw_terminal
from cli.pyengine.api import STDERR, SYSTEM_ERROR, CLIError, Hijacked, Response, chunks, frames

DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q, the daemon's default
# Signals an attached, non-TTY `run` passes on to the container, as docker's sig-proxy does.
PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def copy_output(body: Response, tty: bool) -> None:
    """A TTY stream as it is, a multiplexed one split back into our stdout and stderr."""
    sys.stdout.flush()
    if tty:
        for data in chunks(body):
            _write_all(1, data)
        return
    for stream, payload in frames(body):
        if stream == SYSTEM_ERROR:
            raise CLIError(f"error from daemon in stream: {payload.decode(errors='replace')}")
        _write_all(2 if stream == STDERR else 1, payload)


class _StdinForwarder(threading.Thread):
    """Copies our stdin to the connection, then half-closes it; notes whether the detach keys went by.

    A daemon thread: a read pending on a terminal must not keep the CLI from exiting.
    """

    def __init__(self, conn: Hijacked, watch_detach: bool, keys: bytes) -> None:
        super().__init__(name="stdin", daemon=True)
        self._conn = conn
        self._watch = watch_detach
        self._keys = keys
        self._tail = b""
        self.detached = False

    def run(self) -> None:
        try:
            while data := os.read(0, 32 * 1024):
                if self._watch:
                    # The daemon finds the keys and ends the stream; we only need to know why it ended,
                    # so the flag is set before the keys leave.
                    seen = self._tail + data
                    self.detached = self._keys in seen
                    self._tail = seen[-(len(self._keys) - 1):] if len(self._keys) > 1 else b""
                self._conn.send(data)
                if self.detached:
                    return
        except OSError:
            return
        self._conn.close_write()


@contextlib.contextmanager
def _on_signals(signals: tuple[signal.Signals, ...], handler: Callable[[signal.Signals], None]) -> Iterator[None]:
    """Run `handler` on a thread for each signal: it makes HTTP calls, which a signal handler must not block on."""
    def quietly(sig: signal.Signals) -> None:
        # Best effort, as docker does: the container may be gone already.
        with contextlib.suppress(CLIError, OSError):
            handler(sig)

    def dispatch(signum: int, _frame: object) -> None:
        threading.Thread(target=quietly, args=(signal.Signals(signum),), daemon=True).start()

    saved = {s: signal.signal(s, dispatch) for s in signals}
    try:
        yield
    finally:
        for s, previous in saved.items():
            signal.signal(s, previous)


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size()
    return size.lines, size.columns


def pump(conn: Hijacked, *, tty: bool, stdin: bool, resize: Callable[[int, int], None] | None = None,
         proxy: Callable[[signal.Signals], None] | None = None, detach_keys: bytes = DETACH_KEYS) -> bool:
    """Copy the container's output to ours and our stdin to it until the daemon ends the stream.

    `resize` is told our terminal's size now and on every SIGWINCH; `proxy` gets the signals
    docker's sig-proxy forwards. Returns True if the user typed the detach keys (`detach_keys`, the
    sequence the daemon was given).
    """
    forwarder = None
    if stdin:
        forwarder = _StdinForwarder(conn, watch_detach=tty, keys=detach_keys)
    else:
        conn.close_write()
    with contextlib.ExitStack() as stack:
        if tty and stdin:
            stack.enter_context(raw_terminal(True))
        if resize is not None and tty and sys.stdout.isatty():
            stack.enter_context(_on_signals((signal.SIGWINCH,), lambda _: resize(*terminal_size())))
            with contextlib.suppress(CLIError):
                resize(*terminal_size())
        if proxy is not None:
            stack.enter_context(_on_signals(PROXIED_SIGNALS, proxy))
        if forwarder is not None:
            forwarder.start()
        try:
            copy_output(conn.output, tty)
        except ConnectionError:
            pass
    return forwarder is not None and forwarder.detached
