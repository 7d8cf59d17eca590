"""One conmon per supervised process: a container's init (a task) or an exec.

conmon (API version 1) daemonizes (its first process exits once the monitor has forked
into a new session under init), so it outlives the runtime: it keeps the process's
stdio, writes the k8s-file log, records the exit code and serves the attach socket
whether or not we are around. Nothing it holds is tied to us: its stdio is a file in
the state dir, and the pipes we talk over matter only while we wait for an answer.

conmon answers on the sync pipe (`_OCI_SYNCPIPE`) with one JSON line per event:
`{"data": <pid>}` once `runc create`/`runc exec` is done, or a negative value and the
runtime's `message` (runc's JSON log line) if it failed.

Files, all chosen by us:
  <state_dir>/conmon.pid   conmon's pid          (exits.CONMON_PIDFILE)
  <state_dir>/pid          the process's pid     (exits.PIDFILE)
  <state_dir>/exit         exit code (--persist-dir copy; exits.EXIT_FILE)
  <state_dir>/conmon.log   conmon's own stderr (errors only)
  <exit_dir>/<task id>     exit code of a task (--exit-dir; conmon names it after the container)
  <bundle>/attach, ctl, winsz   conmon puts these in its -b directory: for an exec that is
                           the exec's state dir, so it never touches the task's.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
from dataclasses import dataclass
from typing import Any, BinaryIO

from runtime import telemetry
from runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    Internal,
    RuntimeError_,
    Unavailable,
)
from runtime.tasks import exits
from runtime.tasks.runc import RUNC, Runc, error_for, error_message

CONMON = "/usr/bin/conmon"
ATTACH_SOCKET = "attach"
CTL_FIFO = "ctl"
CONMON_LOG = "conmon.log"
PROCESS_SPEC = "process.json"
DEFAULT_TIMEOUT = 30.0

_tracer = telemetry.tracer("runtime.tasks.conmon")

_STALE = (exits.CONMON_PIDFILE, exits.PIDFILE, exits.EXIT_FILE)


@dataclass(frozen=True)
class TaskProcess:
    """A created task: its init process waits for `runc start` (Runc.start)."""

    id: str
    pid: int
    conmon_pid: int
    state_dir: str
    attach_socket: str  # connect before `runc start` to see all output
    ctl_fifo: str       # attach.resize()
    exit_file: str      # <exit_dir>/<id>


@dataclass(frozen=True)
class ExecProcess:
    id: str
    exec_id: str
    pid: int
    conmon_pid: int
    state_dir: str
    attach_socket: str
    ctl_fifo: str
    exit_file: str      # <state_dir>/exit


class _Conmon:
    """A conmon being started: its pipes and the state dir it reports in."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.pidfile = os.path.join(state_dir, exits.CONMON_PIDFILE)
        self._readers: dict[str, asyncio.StreamReader] = {}
        self._transports: list[asyncio.BaseTransport] = []
        self.start_fd: int | None = None

    async def spawn(self, conmon_path: str, args: list[str], log: BinaryIO, *, attach_gate: bool) -> None:
        """Run conmon with its own stderr going to `log` (closed here)."""
        loop = asyncio.get_running_loop()
        names = ["_OCI_SYNCPIPE"] + (["_OCI_ATTACHPIPE", "_OCI_STARTPIPE"] if attach_gate else [])
        child_fds: list[int] = []
        env = {"PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")}
        try:
            for name in names:
                r, w = os.pipe()
                if name == "_OCI_STARTPIPE":
                    # conmon reads this pipe once before it starts and, with --exec-attach,
                    # again before it runs the exec: the first token goes now.
                    self.start_fd, child = w, r
                    os.write(w, b"0")
                else:
                    reader = asyncio.StreamReader()
                    transport, _ = await loop.connect_read_pipe(
                        functools.partial(asyncio.StreamReaderProtocol, reader), os.fdopen(r, "rb", 0))
                    self._readers[name] = reader
                    self._transports.append(transport)
                    child = w
                child_fds.append(child)
                env[name] = str(child)
            try:
                proc = await asyncio.create_subprocess_exec(
                    # conmon drops files (an "oom" marker on OOM kills) in its working directory:
                    # keep them in the process's own state dir, never wherever the daemon started.
                    conmon_path, *args, env=env, pass_fds=child_fds, start_new_session=True, cwd=self.state_dir,
                    stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                )
            except OSError as e:
                raise FailedPrecondition(f"cannot run conmon {conmon_path}: {e.strerror}") from None
        finally:
            log.close()
            for fd in child_fds:
                os.close(fd)
        # The first process only forks the monitor (and writes --conmon-pidfile): quick.
        if await proc.wait() != 0:
            raise Internal(f"conmon failed: {self.diagnostics()}")

    async def answer(self, pipe: str) -> int:
        """The next value conmon reports on `pipe`; a typed error if it reports a failure."""
        line = await self._readers[pipe].readline()
        if not line:
            raise Internal(f"conmon exited without an answer: {self.diagnostics()}")
        try:
            msg = json.loads(line)
            value = int(msg["data"])
        except (ValueError, KeyError, TypeError):
            raise Internal(f"conmon sent {line!r} on {pipe}") from None
        if value < 0:
            raise error_for(error_message(str(msg.get("message") or "")))
        return value

    def release(self) -> None:
        """Let conmon run the exec it holds back under --exec-attach."""
        if self.start_fd is None:
            raise FailedPrecondition("this exec was already started or aborted")
        os.write(self.start_fd, b"0")
        self.close_start()

    def close_start(self) -> None:
        if self.start_fd is not None:
            os.close(self.start_fd)
            self.start_fd = None

    def close(self) -> None:
        """Drop our ends of the pipes: conmon does not need them once it has answered."""
        self.close_start()
        for t in self._transports:
            t.close()
        self._transports.clear()

    def conmon_pid(self) -> int:
        pid = exits.read_pidfile(self.pidfile)
        if pid is None:
            raise Internal(f"conmon wrote no pid to {self.pidfile}")
        return pid

    def kill_now(self) -> int | None:
        """SIGKILL conmon and the child it may have forked for runc; the monitor's pid.

        The monitor leads its own process group (the container's processes have their own
        sessions), so one killpg reaches both: no child is left to carry on, even once our
        pipes close, since a killed process never runs another instruction of its own.
        """
        pid = exits.read_pidfile(self.pidfile)
        if pid is None or not exits.is_conmon(pid, self.pidfile):
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return pid

    async def kill(self) -> None:
        """kill_now(), then wait until conmon is gone (and has let go of its files)."""
        pid = self.kill_now()
        if pid is not None:
            await exits.wait_gone(pid, self.pidfile)

    def diagnostics(self) -> str:
        try:
            with open(os.path.join(self.state_dir, CONMON_LOG), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 2048))
                text = f.read().decode(errors="replace").strip()
        except FileNotFoundError:
            text = ""
        return text or "no diagnostics"


def _prepare(state_dir: str, log_path: str | None, stale: tuple[str, ...] = (),
             spec: tuple[str, dict[str, Any]] | None = None) -> BinaryIO:
    """Make the directories conmon writes into and clear what a previous process left; conmon's own log,
    opened for its stderr.

    Run in a thread: all of it is filesystem work.
    """
    os.makedirs(state_dir, exist_ok=True)
    pidfile = os.path.join(state_dir, exits.CONMON_PIDFILE)
    pid = exits.read_pidfile(pidfile)
    if pid is not None and exits.is_conmon(pid, pidfile):
        raise AlreadyExists(f"a conmon (pid {pid}) already supervises {state_dir}")
    # Left from an earlier process in a reused state dir, they would be read as ours.
    for path in (*(os.path.join(state_dir, n) for n in _STALE), *stale):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    for path in filter(None, (log_path, *stale)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    if spec is not None:
        with open(spec[0], "w") as f:
            json.dump(spec[1], f)
    return open(os.path.join(state_dir, CONMON_LOG), "ab")


def _common_args(cid: str, cuuid: str, bundle: str, state_dir: str, log_path: str | None, runc_root: str,
                 runtime_path: str, runtime_args: tuple[str, ...], terminal: bool, stdin: bool,
                 leave_stdin_open: bool) -> list[str]:
    args = [
        "--api-version", "1",
        "-c", cid, "-u", cuuid,
        "-r", runtime_path,
        "-b", bundle,
        "-p", os.path.join(state_dir, exits.PIDFILE),
        "-l", f"k8s-file:{log_path}" if log_path else "none:",
        "--persist-dir", state_dir,
        "--conmon-pidfile", os.path.join(state_dir, exits.CONMON_PIDFILE),
        *(a for arg in runtime_args for a in ("--runtime-arg", arg)),
        "--runtime-arg", f"--root={runc_root}",
        # runc's errors then come back as JSON lines whose msg we can lift out.
        "--runtime-arg", "--log-format=json",
        "--log-level", "error",
        # The attach socket is bound at <bundle>/attach whatever the path's length; we
        # connect through /proc/self/fd, so no short socket dir (or symlink) is needed.
        "--full-attach",
        # conmon would fsync the log at the process's exit, between the exit and its report of it; the
        # log is as durable as dockerd's without (neither daemon syncs what a container writes).
        "--no-sync-log",
    ]
    if terminal:
        args.append("-t")
    if stdin:
        args.append("-i")
    if leave_stdin_open:
        args.append("--leave-stdin-open")
    return args


async def create_task(
    id: str,
    bundle: str,
    *,
    runc_root: str,
    state_dir: str,
    log_path: str | None,
    exit_dir: str,
    terminal: bool = False,
    stdin: bool = False,
    leave_stdin_open: bool = False,
    runtime_path: str = RUNC,
    runtime_args: tuple[str, ...] = (),
    conmon_path: str = CONMON,
    timeout: float = DEFAULT_TIMEOUT,
    log_size_max: int = 0,
) -> TaskProcess:
    """`runc create` the container in `bundle` under a new conmon; it is left "created".

    `terminal` must match the bundle's process.terminal (runc refuses a mismatch).
    With `stdin`, the process's stdin is open until an attached client closes it (or
    disconnects, unless `leave_stdin_open`). Past `log_size_max` bytes (0: never) conmon
    starts the log over in a new file renamed into place. A failing create raises runc's message as a
    typed error (InvalidArgument for a bad spec or executable); nothing is left running.
    """
    bundle, state_dir, exit_dir, runc_root = map(os.path.abspath, (bundle, state_dir, exit_dir, runc_root))
    exit_file = os.path.join(exit_dir, id)
    if log_path:
        log_path = os.path.abspath(log_path)
    log = await asyncio.to_thread(_prepare, state_dir, log_path, (exit_file,))
    args = _common_args(id, id, bundle, state_dir, log_path, runc_root, runtime_path, runtime_args, terminal, stdin,
                        leave_stdin_open) + ["--exit-dir", exit_dir]
    if log_path and log_size_max:
        args += ["--log-size-max", str(log_size_max)]
    c = _Conmon(state_dir)
    try:
        async with asyncio.timeout(timeout):
            # conmon forks its monitor, which runs `runc create`; the sync pipe answers once that is done.
            with telemetry.step(_tracer, "conmon spawn", **{"container.id": id}):
                await c.spawn(conmon_path, args, log, attach_gate=False)
            with telemetry.step(_tracer, "runc create (under conmon)", **{"container.id": id}):
                pid = await c.answer("_OCI_SYNCPIPE")
        conmon_pid = c.conmon_pid()
    except RuntimeError_:
        # A reported failure: runc rolled its create back, and the id may well be another
        # live container's, so nothing is deleted by id.
        await c.kill()
        raise
    except BaseException as e:
        await c.kill()
        # Interrupted mid-create: runc state and cgroups may be left behind.
        with contextlib.suppress(RuntimeError_):
            await Runc(runc_root, runtime_path, runtime_args).delete(id, force=True)
        if isinstance(e, TimeoutError):
            raise Unavailable(f"conmon did not create {id} within {timeout:g}s") from None
        raise
    finally:
        c.close()
    return TaskProcess(id=id, pid=pid, conmon_pid=conmon_pid, state_dir=state_dir,
                       attach_socket=os.path.join(bundle, ATTACH_SOCKET), ctl_fifo=os.path.join(bundle, CTL_FIFO),
                       exit_file=exit_file)


class PendingExec:
    """An exec whose conmon is up and listening on its attach socket, process not yet run.

    Attach first, then `start()`: the attached client sees every byte the process writes.
    """

    def __init__(self, id: str, exec_id: str, conmon: _Conmon, timeout: float) -> None:
        self.id = id
        self.exec_id = exec_id
        self.state_dir = conmon.state_dir
        self.attach_socket = os.path.join(conmon.state_dir, ATTACH_SOCKET)
        self.ctl_fifo = os.path.join(conmon.state_dir, CTL_FIFO)
        self._conmon = conmon
        self._timeout = timeout

    async def start(self) -> ExecProcess:
        """Run the process (`runc exec`); runc's error as a typed error if it cannot."""
        c = self._conmon
        try:
            async with asyncio.timeout(self._timeout):
                c.release()
                pid = await c.answer("_OCI_SYNCPIPE")
            conmon_pid = c.conmon_pid()
        except BaseException as e:
            await c.kill()
            if isinstance(e, TimeoutError):
                raise Unavailable(f"conmon did not start exec {self.exec_id} within {self._timeout:g}s") from None
            raise
        finally:
            # conmon reports the exit code on the sync pipe too, but the exit file is
            # what survives us; conmon carries on if nobody reads the pipe.
            c.close()
        return ExecProcess(id=self.id, exec_id=self.exec_id, pid=pid, conmon_pid=conmon_pid,
                           state_dir=self.state_dir, attach_socket=self.attach_socket, ctl_fifo=self.ctl_fifo,
                           exit_file=os.path.join(self.state_dir, exits.EXIT_FILE))

    def abort(self) -> None:
        """Give up before start(): conmon is killed so the process never runs.

        (Closing the start pipe alone is not enough: conmon 2.1 runs the exec on EOF.)
        """
        self._conmon.kill_now()
        self._conmon.close()


async def create_exec(
    id: str,
    exec_id: str,
    process_spec: dict[str, Any],
    *,
    runc_root: str,
    state_dir: str,
    log_path: str | None = None,
    terminal: bool = False,
    stdin: bool = False,
    leave_stdin_open: bool = False,
    runtime_path: str = RUNC,
    runtime_args: tuple[str, ...] = (),
    conmon_path: str = CONMON,
    timeout: float = DEFAULT_TIMEOUT,
) -> PendingExec:
    """Prepare an extra process (an OCI `process` object) in the running container `id`.

    `state_dir` is the exec's own directory: conmon's files, the attach socket and the
    exit file (<state_dir>/exit) live there. No log is written unless `log_path` is given.
    """
    state_dir, runc_root = os.path.abspath(state_dir), os.path.abspath(runc_root)
    if log_path:
        log_path = os.path.abspath(log_path)
    spec_path = os.path.join(state_dir, PROCESS_SPEC)
    # conmon allocates the terminal from -t; a spec saying otherwise would make runc refuse.
    log = await asyncio.to_thread(_prepare, state_dir, log_path, spec=(spec_path, {**process_spec, "terminal": terminal}))
    # -b only tells conmon where to put attach/ctl/winsz for an exec: runc exec needs no bundle.
    args = _common_args(id, exec_id, state_dir, state_dir, log_path, runc_root, runtime_path, runtime_args,
                        terminal, stdin, leave_stdin_open) + ["--exec", "--exec-process-spec", spec_path, "--exec-attach"]
    c = _Conmon(state_dir)
    try:
        async with asyncio.timeout(timeout):
            with telemetry.step(_tracer, "conmon spawn (exec)", **{"container.id": id, "exec.id": exec_id}):
                await c.spawn(conmon_path, args, log, attach_gate=True)
                await c.answer("_OCI_ATTACHPIPE")
    except BaseException as e:
        try:
            await c.kill()
        finally:
            c.close()
        if isinstance(e, TimeoutError):
            raise Unavailable(f"conmon did not prepare exec {exec_id} within {timeout:g}s") from None
        raise
    return PendingExec(id, exec_id, c, timeout)


async def exec_process(id: str, exec_id: str, process_spec: dict[str, Any], **kwargs: Any) -> ExecProcess:
    """create_exec() (same keyword arguments) and start() at once, for a process nobody
    needs to watch from its first byte (its log, if any, still has everything)."""
    pending = await create_exec(id, exec_id, process_spec, **kwargs)
    return await pending.start()
