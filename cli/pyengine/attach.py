"""docker attach: our stdio on a running container's, until it stops or we detach."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import json
import signal
import sys
import threading
from typing import Annotated

import typer

from cli.pyengine.api import CLIError, Hijacked, Response, path_quote
from cli.pyengine.app import app, engine
from cli.pyengine.streams import DETACH_KEYS, pump

_QUIET_SECONDS = 0.3
_CTRL_KEYS = "abcdefghijklmnopqrstuvwxyz"
_CTRL_SYMBOLS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def detach_key_bytes(spec: str) -> bytes:
    """docker's detach-keys syntax (`ctrl-p,ctrl-q`, `a`, `ctrl-@`) as the bytes the keys send."""
    out = bytearray()
    for key in spec.split(","):
        lowered = key.lower()
        if len(key) == 1:
            out.append(ord(key))
        elif lowered.startswith("ctrl-") and len(lowered) == 6 and lowered[5] in _CTRL_KEYS:
            out.append(_CTRL_KEYS.index(lowered[5]) + 1)
        elif lowered.startswith("ctrl-") and len(lowered) == 6 and lowered[5] in _CTRL_SYMBOLS:
            out.append(_CTRL_SYMBOLS[lowered[5]])
        else:
            raise CLIError(f"Invalid detach keys ({spec}) provided", 125)
    return bytes(out)


def _refusal(state: dict[str, object]) -> str | None:
    if state.get("Paused"):
        return "You cannot attach to a paused container, unpause it first"
    if state.get("Restarting"):
        return "You cannot attach to a restarting container, wait until it is running"
    if not state.get("Running"):
        return "You cannot attach to a stopped container, start it first"
    return None


class _WaitWatcher(threading.Thread):
    """Reads the container's wait and, once it answers, ends the attach stream when its output goes quiet.

    A process that exits between our inspect and the hijack leaves an attach the daemon holds open until the
    next start: the wait is then the only sign that the container stopped.
    """

    def __init__(self, waiter: Response, conn: Hijacked) -> None:
        super().__init__(name="wait", daemon=True)
        self._waiter = waiter
        self._conn = conn
        self.pumped = threading.Event()
        self.answer = b""
        self.ended_stream = False

    def run(self) -> None:
        try:
            self.answer = self._waiter.read()
        except (OSError, ValueError, CLIError):
            return  # the command detached and closed the wait under us
        seen = self._conn.output.received
        # What the daemon sent before the exit is still let through: the stream ends once nothing arrives.
        while not self.pumped.wait(_QUIET_SECONDS):
            if self._conn.output.received == seen:
                self.ended_stream = True
                self._conn.shutdown()
                return
            seen = self._conn.output.received


@app.command()
def attach(
    container: Annotated[str, typer.Argument(metavar="CONTAINER")],
    detach_keys: Annotated[str | None, typer.Option("--detach-keys",
                                                    help="Override the key sequence for detaching.")] = None,
    no_stdin: Annotated[bool, typer.Option("--no-stdin", help="Do not attach STDIN.")] = False,
    sig_proxy: Annotated[bool, typer.Option("--sig-proxy", help="Proxy received signals to the process (not "
                                                                "with a TTY): --sig-proxy=false to keep them.")]
    = True,
) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    keys = detach_key_bytes(detach_keys) if detach_keys else DETACH_KEYS
    e = engine()
    info = e.get(f"/containers/{path_quote(container)}/json")
    cid, config = info["Id"], info.get("Config") or {}
    refusal = _refusal(info.get("State") or {})
    if refusal:
        raise CLIError(refusal)
    tty, stdin = bool(config.get("Tty")), not no_stdin and bool(config.get("OpenStdin"))
    if tty and stdin and not sys.stdin.isatty():
        raise CLIError("the input device is not a TTY")
    # Waiting before attaching, as docker does, so that an exit between the two is not missed.
    waiter = e.open("POST", f"/containers/{cid}/wait")
    try:
        conn = e.hijack(f"/containers/{cid}/attach", {"stream": 1, "stdin": 1 if stdin else None, "stdout": 1,
                                                      "stderr": 1, "detachKeys": detach_keys})

        def resize(height: int, width: int) -> None:
            e.post(f"/containers/{cid}/resize", {"h": height, "w": width})

        def proxy(sig: signal.Signals) -> None:
            e.post(f"/containers/{cid}/kill", {"signal": sig.name.removeprefix("SIG")})

        watcher = _WaitWatcher(waiter, conn)
        watcher.start()
        try:
            detached = pump(conn, tty=tty, stdin=stdin, resize=resize, proxy=proxy if sig_proxy and not tty else None,
                            detach_keys=keys)
        except OSError:
            if not watcher.ended_stream:
                raise
            detached = False
        finally:
            watcher.pumped.set()
            conn.close()
        if detached:
            return
        watcher.join()
        result = json.loads(watcher.answer or b"null")
    finally:
        waiter.close()
    if not isinstance(result, dict):
        raise CLIError("error waiting for the container: the daemon ended the wait without a status")
    if (result.get("Error") or {}).get("Message"):
        raise CLIError(f"error waiting for the container: {result['Error']['Message']}")
    raise SystemExit(int(result.get("StatusCode", 0)))
