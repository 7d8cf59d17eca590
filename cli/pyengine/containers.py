"""Container commands: run, ps, logs, exec, start, stop, restart, kill, rm, top, port."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import contextlib
import inspect
import json
import signal
import sys
from typing import Annotated, Any, Callable, Iterator

import typer

from cli.common.units import human_size
from cli.pyengine import createopts, runopts
from cli.pyengine.api import CLIError, DaemonError, Engine, path_quote
from cli.pyengine.app import app, engine, for_each
from cli.pyengine.exitcodes import RUN_FAILED, start_failure_code
from cli.pyengine.formatting import Template, ago, filters, local_time, natural_key, tabulate, timestamp
from cli.pyengine.streams import copy_output, pump

# Everything after the image (or container) belongs to the command run in the container.
_COMMAND_TAIL = {"allow_interspersed_args": False}
_PS_FORMAT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
_PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
               "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
               "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS"}


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


def attach_and_start(e: Engine, cid: str, *, tty: bool, stdin: bool, autoremove: bool) -> int:
    """docker's attached start: attach, wait (condition next-exit, or removed), start, stream; the exit code.

    Attached before the start so that no output is lost, and waiting before the start so the
    exit cannot be missed.
    """
    conn = e.hijack(f"/containers/{cid}/attach",
                    {"stream": 1, "stdin": 1 if stdin else None, "stdout": 1, "stderr": 1})
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

        def proxy(sig: signal.Signals) -> None:
            e.post(f"/containers/{cid}/kill", {"signal": sig.name.removeprefix("SIG")})

        detached = pump(conn, tty=tty, stdin=stdin, resize=_resize(e, f"/containers/{cid}"),
                        proxy=None if tty else proxy)
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


_DETACH = inspect.Parameter("detach", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=False, annotation=Annotated[
    bool, typer.Option("-d", "--detach", help="Run in the background, print its ID.")])


@app.command(context_settings=_COMMAND_TAIL)
@createopts.with_container_options(_DETACH)
def run(detach: bool = False, **opts: Any) -> None:
    """Create and run a container from an image."""
    tty, interactive = opts["tty"], opts["interactive"]
    if tty and interactive and not detach and not sys.stdin.isatty():
        raise CLIError("the input device is not a TTY")
    e = engine()
    with _failing_with(RUN_FAILED):
        body = createopts.create_body(opts, attach=not detach)
        cid = createopts.create_container(e, opts["image"], opts["name"], body)
        if detach:
            e.post(f"/containers/{cid}/start")
            print(cid)
            return
        code = attach_and_start(e, cid, tty=tty, stdin=interactive, autoremove=opts["rm"])
    raise SystemExit(code)


def _join_host_port(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _displayable_ports(ports: list[dict[str, Any]]) -> str:
    """docker ps's PORTS: consecutive ports on the same address and protocol are grouped (80-81/tcp,
    0.0.0.0:80-81->80-81/tcp when published on the same numbers), other published ports follow one by one."""
    groups: dict[str, list[int]] = {}  # "[ip/]proto" → [first, last], in the order first seen
    result, mappings = [], []

    def group(key: str, first: int, last: int) -> str:
        ip, _, proto = key.rpartition("/")
        numbers = str(first) if first == last else f"{first}-{last}"
        return f"{ip}:{numbers}->{numbers}/{proto}" if ip else f"{numbers}/{proto}"

    for p in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""), p.get("PublicPort", 0),
                                          p.get("Type", ""))):
        private, ip, proto = p.get("PrivatePort", 0), p.get("IP", ""), p.get("Type", "")
        key = proto
        if ip:
            if p.get("PublicPort", 0) != private:
                mappings.append(f"{_join_host_port(ip, p.get('PublicPort', 0))}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        span = groups.get(key)
        if span is None:
            groups[key] = [private, private]
        elif private == span[1] + 1:
            span[1] = private
        else:
            result.append(group(key, *span))
            groups[key] = [private, private]
    result += [group(key, *span) for key, span in groups.items()]
    return ", ".join(result + mappings)


def _ps_fields(c: dict[str, Any], trunc: bool) -> dict[str, str]:
    command = c.get("Command") or ""
    if trunc and len(command) > 20:
        command = command[:19] + "…"
    image = c.get("Image") or ""
    if image.startswith("sha256:"):
        image = image.removeprefix("sha256:")[:12]
    fields = {
        "ID": c["Id"][:12] if trunc else c["Id"], "Image": image,
        "Command": json.dumps(command, ensure_ascii=False), "CreatedAt": local_time(c.get("Created", 0)),
        "RunningFor": ago(c.get("Created", 0)), "Ports": _displayable_ports(c.get("Ports") or []),
        "State": c.get("State", ""), "Status": c.get("Status", ""),
        # Names with a second slash are legacy links to other containers.
        "Names": ",".join(n[1:] for n in c.get("Names") or [] if "/" not in n[1:]),
        "Labels": ",".join(f"{k}={v}" for k, v in (c.get("Labels") or {}).items()),
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in c.get("Mounts") or []),
        "Networks": ",".join(sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}))),
    }
    if "SizeRw" in c:
        fields["Size"] = f"{human_size(c['SizeRw'], 3)} (virtual {human_size(c.get('SizeRootFs', 0), 3)})"
    return fields


@app.command()
def ps(
    all_: Annotated[bool, typer.Option("-a", "--all", help="Show all containers, not only running ones.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only show container IDs.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("-f", "--filter", help="Filter KEY=VALUE (repeatable).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="Go-template-like format, or 'table ...'.")] = None,
    last: Annotated[int, typer.Option("-n", "--last", help="Show the n last created containers.")] = -1,
    latest: Annotated[bool, typer.Option("-l", "--latest", help="Show the latest created container.")] = False,
    size: Annotated[bool, typer.Option("-s", "--size", help="Show sizes.")] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
) -> None:
    """List containers."""
    limit = 1 if latest else last
    containers = engine().get("/containers/json", {"all": 1 if all_ else None, "filters": filters(filter_),
                                                   "limit": limit if limit > 0 else None,
                                                   "size": 1 if size else None})
    rows = [_ps_fields(c, not no_trunc) for c in containers]
    if quiet:
        print("".join(r["ID"] + "\n" for r in rows), end="")
        return
    spec = format_ or (_PS_FORMAT + ("\t{{.Size}}" if size else ""))
    print(Template(spec).lines(rows, _PS_HEADERS), end="")


@app.command()
def logs(
    container: Annotated[str, typer.Argument(metavar="CONTAINER")],
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Follow log output.")] = False,
    tail: Annotated[str, typer.Option("-n", "--tail", help="Lines from the end of the logs, or 'all'.")] = "all",
    timestamps: Annotated[bool, typer.Option("-t", "--timestamps", help="Show timestamps.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Since a timestamp or relative (42m).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until a timestamp or relative (42m).")] = None,
) -> None:
    """Fetch the logs of a container."""
    e = engine()
    info = e.get(f"/containers/{path_quote(container)}/json")
    resp = e.open("GET", f"/containers/{info['Id']}/logs", {
        "stdout": 1, "stderr": 1, "follow": 1 if follow else None, "tail": tail,
        "timestamps": 1 if timestamps else None, "since": since and timestamp(since),
        "until": until and timestamp(until)})
    with contextlib.closing(resp):
        copy_output(resp, bool((info.get("Config") or {}).get("Tty")))


@app.command("exec", context_settings=_COMMAND_TAIL)
def exec_(
    container: Annotated[str, typer.Argument(metavar="CONTAINER")],
    command: Annotated[list[str], typer.Argument(metavar="COMMAND", help="Command and arguments.")],
    detach: Annotated[bool, typer.Option("-d", "--detach", help="Run the command in the background.")] = False,
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep STDIN open.")] = False,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Allocate a pseudo-TTY.")] = False,
    env: Annotated[list[str] | None, typer.Option("-e", "--env", help="Set an environment variable.")] = None,
    user: Annotated[str | None, typer.Option("-u", "--user", help="USER[:GROUP] to run as.")] = None,
    workdir: Annotated[str | None, typer.Option("-w", "--workdir", help="Working directory inside.")] = None,
) -> None:
    """Run a command in a running container."""
    if tty and interactive and not detach and not sys.stdin.isatty():
        raise CLIError("the input device is not a TTY")
    e = engine()
    attach = not detach
    exec_id = e.post(f"/containers/{path_quote(container)}/exec", body={
        "User": user or "", "Privileged": False, "Tty": tty, "AttachStdin": interactive and attach,
        "AttachStdout": attach, "AttachStderr": attach, "Detach": detach, "DetachKeys": "",
        "Env": createopts.env_list(env),
        "WorkingDir": workdir or "", "Cmd": command})["Id"]
    if detach:
        e.post(f"/exec/{exec_id}/start", body={"Detach": True, "Tty": False})
        return
    conn = e.hijack(f"/exec/{exec_id}/start", body={"Detach": False, "Tty": tty})
    try:
        detached = pump(conn, tty=tty, stdin=interactive, resize=_resize(e, f"/exec/{exec_id}"))
    finally:
        conn.close()
    if not detached:
        raise SystemExit(e.get(f"/exec/{exec_id}/json").get("ExitCode") or 0)


@app.command()
def start(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")],
    attach: Annotated[bool, typer.Option("-a", "--attach", help="Attach STDOUT/STDERR, pass on signals.")] = False,
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Attach STDIN.")] = False,
) -> None:
    """Start one or more stopped containers."""
    e = engine()
    if attach or interactive:
        if len(containers) > 1:
            raise CLIError("you cannot start and attach multiple containers at once")
        info = e.get(f"/containers/{path_quote(containers[0])}/json")
        config = info.get("Config") or {}
        raise SystemExit(attach_and_start(e, info["Id"], tty=bool(config.get("Tty")),
                                          stdin=interactive and bool(config.get("OpenStdin")),
                                          autoremove=bool((info.get("HostConfig") or {}).get("AutoRemove"))))

    def start_one(c: str) -> None:
        e.post(f"/containers/{path_quote(c)}/start")
        print(c)

    for_each(containers, start_one)


def _lifecycle(action: str, containers: list[str], query: dict[str, Any]) -> None:
    e = engine()

    def one(c: str) -> None:
        e.post(f"/containers/{path_quote(c)}/{action}", query)
        print(c)

    for_each(containers, one)


@app.command()
def stop(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")],
    time_: Annotated[int | None, typer.Option("-t", "--time", help="Seconds to wait before killing.")] = None,
    signal_: Annotated[str | None, typer.Option("-s", "--signal", help="Signal to stop with.")] = None,
) -> None:
    """Stop one or more running containers."""
    _lifecycle("stop", containers, {"t": time_, "signal": signal_})


@app.command()
def restart(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")],
    time_: Annotated[int | None, typer.Option("-t", "--time", help="Seconds to wait before killing.")] = None,
    signal_: Annotated[str | None, typer.Option("-s", "--signal", help="Signal to stop with.")] = None,
) -> None:
    """Restart one or more containers."""
    _lifecycle("restart", containers, {"t": time_, "signal": signal_})


@app.command()
def kill(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")],
    signal_: Annotated[str | None, typer.Option("-s", "--signal", help="Signal to send (KILL by default).")] = None,
) -> None:
    """Kill one or more running containers."""
    _lifecycle("kill", containers, {"signal": signal_})


@app.command()
def rm(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")],
    force: Annotated[bool, typer.Option("-f", "--force", help="Kill and remove a running container.")] = False,
    volumes: Annotated[bool, typer.Option("-v", "--volumes", help="Remove anonymous volumes too.")] = False,
) -> None:
    """Remove one or more containers."""
    e = engine()

    def remove(c: str) -> None:
        try:
            e.call("DELETE", f"/containers/{path_quote(c)}", {"force": 1 if force else None,
                                                              "v": 1 if volumes else None})
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
    container: Annotated[str, typer.Argument(metavar="CONTAINER")],
    ps_args: Annotated[list[str] | None, typer.Argument(metavar="[ps OPTIONS]")] = None,
) -> None:
    """Display the running processes of a container."""
    result = engine().get(f"/containers/{path_quote(container)}/top", {"ps_args": " ".join(ps_args or []) or None})
    lines = ["\t".join(result.get("Titles") or [])]
    lines += ["\t".join(row) for row in result.get("Processes") or []]
    print(tabulate(lines, min_width=20), end="")


@app.command()
def port(
    container: Annotated[str, typer.Argument(metavar="CONTAINER")],
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
        lines = [_join_host_port(b.get("HostIp", ""), b.get("HostPort", "")) for b in published[key]]
    else:
        lines = [f"{p} -> {_join_host_port(b.get('HostIp', ''), b.get('HostPort', ''))}"
                 for p, found in published.items() for b in found or []]
    print("".join(line + "\n" for line in sorted(lines, key=natural_key)), end="")
