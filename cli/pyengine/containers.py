"""Container commands: run, ps, logs, exec, start, stop, restart, kill, rm, top, port."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import contextlib
import json
import os
import signal
import sys
from typing import Annotated, Any, Callable, Iterator

import typer

from cli.common.units import human_size
from cli.pyengine import completion as complete
from cli.pyengine import runopts
from cli.pyengine.api import CLIError, DaemonError, Engine, path_quote
from cli.pyengine.app import app, engine, for_each, key_values
from cli.pyengine.exitcodes import RUN_FAILED, start_failure_code
from cli.pyengine.formatting import natural_key, tabulate, timestamp
from cli.pyengine.images import pull_image, with_tag
from cli.pyengine.streams import copy_output, pump, terminal_size

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


def _env(items: list[str] | None) -> list[str] | None:
    """-e KEY=VALUE as given; -e KEY takes KEY from our environment, or is dropped when we have none."""
    out = []
    for item in items or []:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return out or None


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


def _create(e: Engine, image: str, name: str | None, body: dict[str, Any]) -> str:
    """Create, pulling the image first if the daemon does not have it."""
    try:
        created = e.post("/containers/create", {"name": name}, body)
    except DaemonError as err:
        if err.status != 404 or not err.daemon_message.startswith("No such image"):
            raise
        print(f"Unable to find image '{with_tag(image)}' locally", file=sys.stderr)
        pull_image(e, image, sys.stderr)
        created = e.post("/containers/create", {"name": name}, body)
    for warning in created.get("Warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    return str(created["Id"])


@app.command(context_settings=_COMMAND_TAIL)
def run(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="The image to run.", autocompletion=complete.images)],
    command: Annotated[list[str] | None, typer.Argument(metavar="COMMAND", help="Command and arguments.")] = None,
    detach: Annotated[bool, typer.Option("-d", "--detach", help="Run in the background, print its ID.")] = False,
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep STDIN open.")] = False,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Allocate a pseudo-TTY.")] = False,
    rm: Annotated[bool, typer.Option("--rm", help="Remove the container when it exits.")] = False,
    env: Annotated[list[str] | None, typer.Option("-e", "--env", help="Set an environment variable.")] = None,
    volume: Annotated[list[str] | None, typer.Option(
        "-v", "--volume", help="Bind mount HOST:CONTAINER[:ro], a volume NAME:CONTAINER[:ro], or an anonymous "
                               "volume CONTAINER.")] = None,
    mount: Annotated[list[str] | None, typer.Option(
        "--mount", help="Mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,...].")] = None,
    tmpfs: Annotated[list[str] | None, typer.Option("--tmpfs", help="Mount a tmpfs PATH[:OPTIONS].")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name the container.")] = None,
    network: Annotated[str, typer.Option("--network", help="none, host, bridge or a network's name.")] = "default",
    network_alias: Annotated[list[str] | None, typer.Option("--network-alias",
                                                            help="A network-scoped alias.")] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="IPv4 address on the network.")] = None,
    publish: Annotated[list[str] | None, typer.Option(
        "-p", "--publish", help="Publish \\[IP:]\\[HOST_PORT:]CONTAINER_PORT\\[/PROTO], ports or ranges.")] = None,
    publish_all: Annotated[bool, typer.Option("-P", "--publish-all",
                                              help="Publish every exposed port on a random port.")] = False,
    expose: Annotated[list[str] | None, typer.Option("--expose", help="Expose a port or a range.")] = None,
    entrypoint: Annotated[str | None, typer.Option("--entrypoint", help="Override the image's entrypoint.")] = None,
    workdir: Annotated[str | None, typer.Option("-w", "--workdir", help="Working directory inside.")] = None,
    user: Annotated[str | None, typer.Option("-u", "--user", help="USER[:GROUP] to run as.")] = None,
    label: Annotated[list[str] | None, typer.Option("-l", "--label", help="Set a label KEY=VALUE.")] = None,
    init: Annotated[bool, typer.Option("--init", help="Run an init that forwards signals and reaps.")] = False,
    memory: Annotated[int | None, typer.Option("-m", "--memory", parser=runopts.ram_in_bytes, metavar="BYTES",
                                               help="Memory limit (512m, 1g).")] = None,
    cpus: Annotated[float | None, typer.Option("--cpus", help="Number of CPUs.")] = None,
    restart: Annotated[str | None, typer.Option(
        "--restart", help="Restart policy: no, always, unless-stopped, on-failure[:N].")] = None,
    health_cmd: Annotated[str | None, typer.Option("--health-cmd", help="Command to check health.")] = None,
    health_interval: Annotated[str | None, typer.Option("--health-interval", help="Time between checks.")] = None,
    health_timeout: Annotated[str | None, typer.Option("--health-timeout", help="A check's time limit.")] = None,
    health_retries: Annotated[int | None, typer.Option(
        "--health-retries", help="Consecutive failures that make it unhealthy.")] = None,
    health_start_period: Annotated[str | None, typer.Option(
        "--health-start-period", help="Start-up time when failures do not count.")] = None,
    health_start_interval: Annotated[str | None, typer.Option(
        "--health-start-interval", help="Time between checks during the start period.")] = None,
    no_healthcheck: Annotated[bool, typer.Option("--no-healthcheck", help="Disable the image's healthcheck.")] = False,
    health_on_failure: Annotated[str | None, typer.Option(
        "--health-on-failure", help="none, kill, stop or restart when the container turns unhealthy.")] = None,
) -> None:
    """Create and run a container from an image."""
    if tty and interactive and not detach and not sys.stdin.isatty():
        raise CLIError("the input device is not a TTY")
    attach = not detach
    rows, cols = terminal_size() if tty and sys.stdout.isatty() else (0, 0)
    binds, anonymous = runopts.volumes(volume or [])
    exposed, bindings = runopts.ports(publish or [], expose or [])
    # As the docker CLI: an endpoint config for the network only when there is something to say.
    endpoint: dict[str, Any] = {}
    if network_alias:
        endpoint["Aliases"] = network_alias
    if ip:
        endpoint["IPAMConfig"] = {"IPv4Address": ip}
    labels = key_values(label)
    if health_on_failure is not None:
        # The engine reads the action from this label (the API has no field for it).
        labels["io.pyengine.health-on-failure"] = health_on_failure
    healthcheck = _healthcheck(health_cmd, health_interval, health_timeout, health_retries, health_start_period,
                               health_start_interval, no_healthcheck)
    body: dict[str, Any] = {
        "Image": image, "Cmd": command or None, "Tty": tty, "OpenStdin": interactive,
        "StdinOnce": interactive and attach, "AttachStdin": interactive and attach,
        "AttachStdout": attach, "AttachStderr": attach, "Env": _env(env), "User": user or "",
        "WorkingDir": workdir or "", "Labels": labels, "Healthcheck": healthcheck,
        "Entrypoint": None if entrypoint is None else [entrypoint],
        "ExposedPorts": exposed or None, "Volumes": anonymous or None,
        "HostConfig": {
            "Binds": binds or None, "Mounts": [runopts.mount(m) for m in mount or []] or None,
            "Tmpfs": runopts.tmpfs(tmpfs or []) or None, "NetworkMode": network,
            "PortBindings": bindings or None, "PublishAllPorts": publish_all, "AutoRemove": rm,
            "Init": True if init else None, "Memory": memory or 0, "NanoCpus": int(cpus * 1e9) if cpus else 0,
            "ConsoleSize": [rows, cols],
            "RestartPolicy": runopts.restart_policy(restart) if restart else None,
        },
        "NetworkingConfig": {"EndpointsConfig": {network: endpoint}} if endpoint else None,
    }
    e = engine()
    with _failing_with(RUN_FAILED):
        cid = _create(e, image, name, body)
        if detach:
            e.post(f"/containers/{cid}/start")
            print(cid)
            return
        code = attach_and_start(e, cid, tty=tty, stdin=interactive, autoremove=rm)
    raise SystemExit(code)


def _healthcheck(cmd: str | None, interval: str | None, timeout: str | None, retries: int | None,
                 start_period: str | None, start_interval: str | None, disabled: bool) -> dict[str, Any] | None:
    """Config.Healthcheck as the docker CLI builds it from the --health-* flags."""
    if disabled:
        if cmd:
            raise CLIError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    given = any(v is not None for v in (cmd, interval, timeout, retries, start_period, start_interval))
    if not given:
        return None
    return {"Test": ["CMD-SHELL", cmd] if cmd else [],
            "Interval": runopts.duration_ns(interval) if interval else 0,
            "Timeout": runopts.duration_ns(timeout) if timeout else 0,
            "StartPeriod": runopts.duration_ns(start_period) if start_period else 0,
            "StartInterval": runopts.duration_ns(start_interval) if start_interval else 0,
            "Retries": retries or 0}


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
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
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
        "AttachStdout": attach, "AttachStderr": attach, "Detach": detach, "DetachKeys": "", "Env": _env(env),
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
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
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
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    time_: Annotated[int | None, typer.Option("-t", "--time", help="Seconds to wait before killing.")] = None,
    signal_: Annotated[str | None, typer.Option("-s", "--signal", help="Signal to stop with.")] = None,
) -> None:
    """Stop one or more running containers."""
    _lifecycle("stop", containers, {"t": time_, "signal": signal_})


@app.command()
def restart(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    time_: Annotated[int | None, typer.Option("-t", "--time", help="Seconds to wait before killing.")] = None,
    signal_: Annotated[str | None, typer.Option("-s", "--signal", help="Signal to stop with.")] = None,
) -> None:
    """Restart one or more containers."""
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
