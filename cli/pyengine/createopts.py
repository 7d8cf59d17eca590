"""The options `run` and `create` share, declared once, and the create request they make.

docker's `run` is `create` plus attach and start: both take the same container options, so their
Typer signatures are built from one declaration (`container_options`) and their request body by
one function (`create_body`).
"""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import inspect
import os
import sys
from typing import Annotated, Any, Callable

import typer

from cli.pyengine import completion as complete
from cli.pyengine import runopts
from cli.pyengine.api import CLIError, DaemonError, Engine
from cli.pyengine.app import key_values
from cli.pyengine.images import pull_image, with_tag
from cli.pyengine.streams import terminal_size


def container_options(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="The image to run.", autocompletion=complete.images)],
    command: Annotated[list[str] | None, typer.Argument(metavar="COMMAND", help="Command and arguments.")] = None,
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
    """The declaration of the shared options: only its signature is used (see `with_container_options`)."""


def with_container_options(*extra: inspect.Parameter) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command taking `**opts` the shared options (and `extra` ones after the arguments) as its
    signature, which is what Typer reads its parameters from."""
    shared = list(inspect.signature(container_options).parameters.values())
    arguments, options = shared[:2], shared[2:]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command.__signature__ = inspect.Signature([*arguments, *extra, *options])  # type: ignore[attr-defined]
        return command

    return decorate


def env_list(items: list[str] | None) -> list[str] | None:
    """-e KEY=VALUE as given; -e KEY takes KEY from our environment, or is dropped when we have none."""
    out = []
    for item in items or []:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return out or None


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


def create_body(o: dict[str, Any], attach: bool) -> dict[str, Any]:
    """POST /containers/create's body from the shared options; `attach` for a container the CLI attaches to
    (run without -d, and create, whose container `start -a` may attach to later)."""
    tty, interactive = o["tty"], o["interactive"]
    rows, cols = terminal_size() if tty and sys.stdout.isatty() else (0, 0)
    binds, anonymous = runopts.volumes(o["volume"] or [])
    exposed, bindings = runopts.ports(o["publish"] or [], o["expose"] or [])
    # As the docker CLI: an endpoint config for the network only when there is something to say.
    endpoint: dict[str, Any] = {}
    if o["network_alias"]:
        endpoint["Aliases"] = o["network_alias"]
    if o["ip"]:
        endpoint["IPAMConfig"] = {"IPv4Address": o["ip"]}
    labels = key_values(o["label"])
    if o["health_on_failure"] is not None:
        # The engine reads the action from this label (the API has no field for it).
        labels["io.pyengine.health-on-failure"] = o["health_on_failure"]
    healthcheck = _healthcheck(o["health_cmd"], o["health_interval"], o["health_timeout"], o["health_retries"],
                               o["health_start_period"], o["health_start_interval"], o["no_healthcheck"])
    memory, cpus = o["memory"], o["cpus"]
    return {
        "Image": o["image"], "Cmd": o["command"] or None, "Tty": tty, "OpenStdin": interactive,
        "StdinOnce": interactive and attach, "AttachStdin": interactive and attach,
        "AttachStdout": attach, "AttachStderr": attach, "Env": env_list(o["env"]), "User": o["user"] or "",
        "WorkingDir": o["workdir"] or "", "Labels": labels, "Healthcheck": healthcheck,
        "Entrypoint": None if o["entrypoint"] is None else [o["entrypoint"]],
        "ExposedPorts": exposed or None, "Volumes": anonymous or None,
        "HostConfig": {
            "Binds": binds or None, "Mounts": [runopts.mount(m) for m in o["mount"] or []] or None,
            "Tmpfs": runopts.tmpfs(o["tmpfs"] or []) or None, "NetworkMode": o["network"],
            "PortBindings": bindings or None, "PublishAllPorts": o["publish_all"], "AutoRemove": o["rm"],
            "Init": True if o["init"] else None, "Memory": memory or 0,
            "NanoCpus": int(cpus * 1e9) if cpus else 0, "ConsoleSize": [rows, cols],
            "RestartPolicy": runopts.restart_policy(o["restart"]) if o["restart"] else None,
        },
        "NetworkingConfig": {"EndpointsConfig": {o["network"]: endpoint}} if endpoint else None,
    }


def create_container(e: Engine, image: str, name: str | None, body: dict[str, Any]) -> str:
    """Create, pulling the image first if the daemon does not have it; the new container's ID."""
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
