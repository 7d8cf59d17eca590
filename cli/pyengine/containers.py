"""Container commands: run, logs, exec, start, stop, restart, kill, rm, top, port (ps is ps.py's)."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import contextlib
import inspect
import json
import signal
import sys
from typing import Annotated, Any, Callable, Iterator

import typer

from cli.pyengine import completion as complete
from cli.pyengine import createopts, hostopts, resourceopts, runopts
from cli.pyengine.api import CLIError, DaemonError, Engine, version_key, path_quote
from cli.pyengine.app import app, engine, for_each, require_api
from cli.pyengine.attach import detach_key_bytes
from cli.pyengine.exitcodes import RUN_FAILED, start_failure_code
from cli.pyengine.formatting import natural_key, tabulate, timestamp
from cli.pyengine.streams import DETACH_KEYS, copy_output, pump

# Everything after the image (or container) belongs to the command run in the container.
_COMMAND_TAIL = {"allow_interspersed_args": False}


@contextlib.contextmanager
def _failing_with(code: int) -> Iterator[None]:
    """docker run reports its own failures (bad options, unknown image, daemon errors) with 125."""
    try:
        yield
    except CLIError as e:
        if e.exit_code == 1:
            e.exit_code = code
        raise


def _resize(e: Engine, path: str) -> Callable[[int, int], None]:
    def resize(height: int, width: int) -> None:
        e.post(f"{path}/resize", {"h": height, "w": width})

    return resize


def attach_and_start(e: Engine, cid: str, *, tty: bool, streams: tuple[bool, bool, bool], autoremove: bool,
                     sig_proxy: bool = True, detach_keys: str | None = None) -> int:
    """docker's attached start: attach, wait (condition next-exit, or removed), start, stream; the exit code.

    Attached before the start so that no output is lost, and waiting before the start so the
    exit cannot be missed. `streams` are the (stdin, stdout, stderr) to attach.
    """
    stdin, stdout, stderr = streams
    keys = detach_key_bytes(detach_keys) if detach_keys else DETACH_KEYS
    conn = e.hijack(f"/containers/{cid}/attach", {"stream": 1, "stdin": 1 if stdin else None,
                                                  "stdout": 1 if stdout else None, "stderr": 1 if stderr else None,
                                                  "detachKeys": detach_keys})
    try:
        waiter = e.open("POST", f"/containers/{cid}/wait", {"condition": "removed" if autoremove else "next-exit"})
        try:
            e.post(f"/containers/{cid}/start")
        except DaemonError as err:
            conn.close()
            if autoremove:
                # The daemon removes the container before answering; the CLI returns once it is gone.
                with contextlib.suppress(OSError, ValueError):
                    waiter.read()
            raise CLIError(err.message, start_failure_code(err.daemon_message)) from None
        if not (stdout or stderr):
            # As docker: with no output attached, the ID is what there is to show.
            print(cid, flush=True)

        def proxy(sig: signal.Signals) -> None:
            e.post(f"/containers/{cid}/kill", {"signal": sig.name.removeprefix("SIG")})

        with contextlib.ExitStack() as stack:
            if not sig_proxy:
                # Not proxied, an interrupt ends the CLI as it ends docker's: by the signal, without a traceback.
                stack.callback(signal.signal, signal.SIGINT, signal.signal(signal.SIGINT, signal.SIG_DFL))
            detached = pump(conn, tty=tty, stdin=stdin, resize=_resize(e, f"/containers/{cid}"),
                            proxy=proxy if sig_proxy and not tty else None, detach_keys=keys)
    finally:
        conn.close()
    if detached:
        waiter.close()
        return 0
    try:
        result = json.loads(waiter.read() or b"null")
    except (OSError, ValueError):
        result = None
    if not isinstance(result, dict):
        raise CLIError("error waiting for the container: the daemon ended the wait without a status", RUN_FAILED)
    if (result.get("Error") or {}).get("Message"):
        raise CLIError(f"error waiting for the container: {result['Error']['Message']}", RUN_FAILED)
    return int(result.get("StatusCode", 0))


def _run_option(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


_RUN_OPTIONS = (
    _run_option("detach", False, Annotated[bool, typer.Option("-d", "--detach",
                                                              help="Run in the background, print its ID.")]),
    _run_option("detach_keys", None, Annotated[str | None, typer.Option(
        "--detach-keys", help="Override the key sequence for detaching.")]),
    # On by default: off as --sig-proxy=false (goflags.py reads the value).
    _run_option("sig_proxy", True, Annotated[bool, typer.Option(
        "--sig-proxy", help="Proxy received signals to the process (not with a TTY): --sig-proxy=false to keep "
                            "them.")]),
)


@app.command(context_settings=_COMMAND_TAIL)
@createopts.with_container_options(*_RUN_OPTIONS)
def run(detach: bool = False, detach_keys: str | None = None, sig_proxy: bool = True, **opts: Any) -> None:
    """Create and run a container from an image."""
    tty, interactive = opts["tty"], opts["interactive"]
    if detach_keys:
        detach_key_bytes(detach_keys)  # refused (exit 125) before anything is created
    if tty and interactive and not detach and not sys.stdin.isatty():
        raise CLIError("the input device is not a TTY")
    if detach:
        createopts.check_detached_attach(opts)
    e = engine()
    resourceopts.windows_only(opts, e)  # exits 1 as docker's does, before anything else
    with _failing_with(RUN_FAILED):
        body = createopts.create_body(opts, detach=detach)
        cid = createopts.create_container(e, opts, body)
        if detach:
            e.post(f"/containers/{cid}/start")
            print(cid)
            return
        streams = (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"])
        code = attach_and_start(e, cid, tty=tty, streams=streams, autoremove=opts["rm"],
                                sig_proxy=sig_proxy, detach_keys=detach_keys)
    raise SystemExit(code)


def join_host_port(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@app.command()
def logs(
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Follow log output.")] = False,
    tail: Annotated[str, typer.Option("-n", "--tail", help="Lines from the end of the logs, or 'all'.")] = "all",
    timestamps: Annotated[bool, typer.Option("-t", "--timestamps", help="Show timestamps.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Since a timestamp or relative (42m).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until a timestamp or relative (42m).")] = None,
    details: Annotated[bool, typer.Option("--details", help="Refused: pyengined keeps no log attributes.")] = False,
) -> None:
    """Fetch the logs of a container."""
    if details:
        raise CLIError("--details is not supported: pyengined keeps no extra attributes with log lines", 125)
    e = engine()
    tty: bool | None
    try:
        info = e.get(f"/containers/{path_quote(container)}/json")
        target, tty = info["Id"], bool((info.get("Config") or {}).get("Tty"))
    except DaemonError as err:
        if err.status != 404:
            raise
        # A removed container's logs may still be kept (pyengined's removed-logs-retention): its logs endpoint
        # answers, and from API 1.42 its media type tells a terminal's raw output from framed output.
        target, tty = container, None
    resp = e.open("GET", f"/containers/{path_quote(target)}/logs", {
        "stdout": 1, "stderr": 1, "follow": 1 if follow else None, "tail": tail,
        "timestamps": 1 if timestamps else None, "since": since and timestamp(since, option="since"),
        "until": until and timestamp(until, option="until")})
    if tty is None:
        tty = resp.headers.get("content-type") == "application/vnd.docker.raw-stream" and \
            version_key(e.version) >= (1, 42)
    with contextlib.closing(resp):
        copy_output(resp, tty)


@app.command("exec", context_settings=_COMMAND_TAIL)
def exec_(
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    command: Annotated[list[str], typer.Argument(metavar="COMMAND", help="Command and arguments.")],
    detach: Annotated[bool, typer.Option("-d", "--detach", help="Run the command in the background.")] = False,
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep STDIN open.")] = False,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Allocate a pseudo-TTY.")] = False,
    env: Annotated[list[str] | None, typer.Option("-e", "--env", help="Set an environment variable.")] = None,
    user: Annotated[str | None, typer.Option("-u", "--user", help="USER[:GROUP] to run as.")] = None,
    workdir: Annotated[str | None, typer.Option("-w", "--workdir", help="Working directory inside.")] = None,
    privileged: Annotated[bool, typer.Option("--privileged", help="Give extended privileges to the command.")]
    = False,
    env_file: Annotated[list[str] | None, typer.Option("--env-file", help="Read environment variables from a "
                                                                          "file.")] = None,
    detach_keys: Annotated[str | None, typer.Option("--detach-keys", help="Override the key sequence for "
                                                                          "detaching.")] = None,
) -> None:
    """Run a command in a running container."""
    if tty and interactive and not detach and not sys.stdin.isatty():
        raise CLIError("the input device is not a TTY")
    e = engine()
    attach = not detach
    environment = [line for f in env_file or [] for line in hostopts.read_kv_file(f, True, exit_code=1)]
    environment += createopts.env_list(env) or []
    exec_id = e.post(f"/containers/{path_quote(container)}/exec", body={
        "User": user or "", "Privileged": privileged, "Tty": tty, "AttachStdin": interactive and attach,
        "AttachStdout": attach, "AttachStderr": attach, "Detach": detach, "DetachKeys": detach_keys or "",
        "Env": environment or None,
        "WorkingDir": workdir or "", "Cmd": command})["Id"]
    if detach:
        e.post(f"/exec/{exec_id}/start", body={"Detach": True, "Tty": False})
        return
    # The daemon has judged the keys by now (as docker, their refusal is its answer).
    keys = detach_key_bytes(detach_keys) if detach_keys else DETACH_KEYS
    conn = e.hijack(f"/exec/{exec_id}/start", body={"Detach": False, "Tty": tty})
    try:
        detached = pump(conn, tty=tty, stdin=interactive, resize=_resize(e, f"/exec/{exec_id}"), detach_keys=keys)
    finally:
        conn.close()
    if not detached:
        raise SystemExit(e.get(f"/exec/{exec_id}/json").get("ExitCode") or 0)


@app.command()
def start(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    attach: Annotated[bool, typer.Option("-a", "--attach", help="Attach STDOUT/STDERR, pass on signals.")] = False,
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Attach STDIN.")] = False,
    detach_keys: Annotated[str | None, typer.Option("--detach-keys", help="Override the key sequence for "
                                                                          "detaching.")] = None,
    checkpoint: Annotated[str | None, typer.Option("--checkpoint", help="Refused: no checkpoints (experimental).")]
    = None,
    checkpoint_dir: Annotated[str | None, typer.Option("--checkpoint-dir", help="Refused with --checkpoint.")]
    = None,
) -> None:
    """Start one or more stopped containers."""
    if checkpoint or checkpoint_dir:
        raise CLIError("--checkpoint is not supported: pyengined does not checkpoint containers", 125)
    if detach_keys:
        detach_key_bytes(detach_keys)  # refused (exit 125) before anything starts
    e = engine()
    if attach or interactive:
        if len(containers) > 1:
            raise CLIError("you cannot start and attach multiple containers at once")
        info = e.get(f"/containers/{path_quote(containers[0])}/json")
        config = info.get("Config") or {}
        raise SystemExit(attach_and_start(e, info["Id"], tty=bool(config.get("Tty")),
                                          streams=(interactive and bool(config.get("OpenStdin")), True, True),
                                          autoremove=bool((info.get("HostConfig") or {}).get("AutoRemove")),
                                          detach_keys=detach_keys))

    def start_one(c: str) -> None:
        e.post(f"/containers/{path_quote(c)}/start")
        print(c)

    for_each(containers, start_one, "failed to start containers")


def _lifecycle(action: str, containers: list[str], query: dict[str, Any]) -> None:
    e = engine()

    def one(c: str) -> None:
        e.post(f"/containers/{path_quote(c)}/{action}", query)
        print(c)

    for_each(containers, one)


@app.command()
def stop(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    time_: Annotated[int | None, typer.Option("-t", "--timeout", "--time",
                                              help="Seconds to wait before killing.")] = None,
    signal_: Annotated[str | None, typer.Option("-s", "--signal", help="Signal to stop with.")] = None,
) -> None:
    """Stop one or more running containers."""
    if signal_ is not None:
        require_api("--signal", "1.42")
    _lifecycle("stop", containers, {"t": time_, "signal": signal_})


@app.command()
def restart(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    time_: Annotated[int | None, typer.Option("-t", "--timeout", "--time",
                                              help="Seconds to wait before killing.")] = None,
    signal_: Annotated[str | None, typer.Option("-s", "--signal", help="Signal to stop with.")] = None,
) -> None:
    """Restart one or more containers."""
    if signal_ is not None:
        require_api("--signal", "1.42")
    _lifecycle("restart", containers, {"t": time_, "signal": signal_})


@app.command()
def kill(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    signal_: Annotated[str | None, typer.Option("-s", "--signal", help="Signal to send (KILL by default).")] = None,
) -> None:
    """Kill one or more running containers."""
    _lifecycle("kill", containers, {"signal": signal_})


@app.command()
def rm(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    force: Annotated[bool, typer.Option("-f", "--force", help="Kill and remove a running container.")] = False,
    volumes: Annotated[bool, typer.Option("-v", "--volumes", help="Remove anonymous volumes too.")] = False,
    link: Annotated[bool, typer.Option("-l", "--link", help="Remove the specified link.")] = False,
) -> None:
    """Remove one or more containers."""
    e = engine()

    def remove(c: str) -> None:
        try:
            e.call("DELETE", f"/containers/{path_quote(c)}", {"force": 1 if force else None,
                                                              "v": 1 if volumes else None, "link": 1 if link else None})
        except DaemonError as err:
            # As docker: forcing the removal of what is already gone is reported, not a failure.
            if not (force and err.status == 404):
                raise
            print(err.message, file=sys.stderr)
            return
        print(c)

    for_each(containers, remove)


@app.command(context_settings=_COMMAND_TAIL)
def top(
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    ps_args: Annotated[list[str] | None, typer.Argument(metavar="[ps OPTIONS]")] = None,
) -> None:
    """Display the running processes of a container."""
    result = engine().get(f"/containers/{path_quote(container)}/top", {"ps_args": " ".join(ps_args or []) or None})
    lines = ["\t".join(result.get("Titles") or [])]
    lines += ["\t".join(row) for row in result.get("Processes") or []]
    print(tabulate("".join(line + "\n" for line in lines), min_width=20), end="")


@app.command()
def port(
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    private_port: Annotated[str | None, typer.Argument(metavar="PRIVATE_PORT[/PROTO]")] = None,
) -> None:
    """List port mappings or a specific mapping for the container."""
    info = engine().get(f"/containers/{path_quote(container)}/json")
    published = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if private_port is not None:
        number, _, proto = private_port.partition("/")
        try:
            runopts.parse_uint(number, 0xFFFF)
        except ValueError:
            raise CLIError(f"Error: invalid port ({number})") from None
        key = f"{number}/{proto or 'tcp'}"
        if published.get(key) is None:
            raise CLIError(f"Error: No public port '{private_port}' published for {container}")
        lines = [join_host_port(b.get("HostIp", ""), b.get("HostPort", "")) for b in published[key]]
    else:
        lines = [f"{p} -> {join_host_port(b.get('HostIp', ''), b.get('HostPort', ''))}"
                 for p, found in published.items() for b in found or []]
    print("".join(line + "\n" for line in sorted(lines, key=natural_key)), end="")
