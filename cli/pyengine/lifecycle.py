"""Container commands beyond run's flow: create, pause, unpause, rename, update, wait, diff."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import sys
from typing import Annotated, Any

import typer

from cli.pyengine import createopts, runopts
from cli.pyengine.api import CLIError, DaemonError, path_quote
from cli.pyengine.app import app, engine, for_each

# docker diff's letters for the daemon's change kinds.
_CHANGE_KINDS = {0: "C", 1: "A", 2: "D"}


@app.command(context_settings={"allow_interspersed_args": False})
@createopts.with_container_options()
def create(**opts: Any) -> None:
    """Create a new container."""
    e = engine()
    body = createopts.create_body(opts, detach=False)
    print(createopts.create_container(e, opts, body))


def _each(action: str, containers: list[str]) -> None:
    e = engine()

    def one(c: str) -> None:
        e.post(f"/containers/{path_quote(c)}/{action}")
        print(c)

    for_each(containers, one)


@app.command()
def pause(containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")]) -> None:
    """Pause all processes within one or more containers."""
    _each("pause", containers)


@app.command()
def unpause(containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")]) -> None:
    """Unpause all processes within one or more containers."""
    _each("unpause", containers)


@app.command()
def rename(
    container: Annotated[str, typer.Argument(metavar="CONTAINER")],
    new_name: Annotated[str, typer.Argument(metavar="NEW_NAME")],
) -> None:
    """Rename a container."""
    old, new = container.strip(), new_name.strip()
    if not old or not new:
        raise CLIError("Error: Neither old nor new names may be empty")
    try:
        engine().post(f"/containers/{path_quote(old)}/rename", {"name": new})
    except DaemonError as err:
        raise CLIError(f"{err.message}\nError: failed to rename container named {old}") from None


def _size(value: str) -> int:
    return runopts.ram_in_bytes(value)


def _swap(value: str) -> int:
    """--memory-swap: a size, or -1 for unlimited swap."""
    return -1 if value.strip() == "-1" else runopts.ram_in_bytes(value)


@app.command()
def update(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")],
    blkio_weight: Annotated[int | None, typer.Option(
        "--blkio-weight", help="Block IO (relative weight), between 10 and 1000, or 0 to disable.")] = None,
    cpu_period: Annotated[int | None, typer.Option(
        "--cpu-period", help="Limit CPU CFS (Completely Fair Scheduler) period.")] = None,
    cpu_quota: Annotated[int | None, typer.Option(
        "--cpu-quota", help="Limit CPU CFS (Completely Fair Scheduler) quota.")] = None,
    cpu_shares: Annotated[int | None, typer.Option("-c", "--cpu-shares", help="CPU shares (relative weight).")]
    = None,
    cpus: Annotated[float | None, typer.Option("--cpus", help="Number of CPUs.")] = None,
    cpuset_cpus: Annotated[str | None, typer.Option(
        "--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1).")] = None,
    cpuset_mems: Annotated[str | None, typer.Option(
        "--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1).")] = None,
    memory: Annotated[int | None, typer.Option("-m", "--memory", parser=_size, metavar="BYTES",
                                               help="Memory limit (512m, 1g).")] = None,
    memory_reservation: Annotated[int | None, typer.Option(
        "--memory-reservation", parser=_size, metavar="BYTES", help="Memory soft limit.")] = None,
    memory_swap: Annotated[int | None, typer.Option(
        "--memory-swap", parser=_swap, metavar="BYTES",
        help="Swap limit equal to memory plus swap: -1 to enable unlimited swap.")] = None,
    pids_limit: Annotated[int | None, typer.Option(
        "--pids-limit", help="Tune container pids limit (-1 for unlimited).")] = None,
    restart: Annotated[str | None, typer.Option(
        "--restart", help="Restart policy: no, always, unless-stopped, on-failure[:N].")] = None,
    cpu_rt_period: Annotated[int | None, typer.Option(
        "--cpu-rt-period", help="CPU real-time period (microseconds).")] = None,
    cpu_rt_runtime: Annotated[int | None, typer.Option(
        "--cpu-rt-runtime", help="CPU real-time runtime (microseconds).")] = None,
) -> None:
    """Update configuration of one or more containers."""
    given = {"BlkioWeight": blkio_weight, "CpuPeriod": cpu_period, "CpuQuota": cpu_quota, "CpuShares": cpu_shares,
             "CpuRealtimePeriod": cpu_rt_period, "CpuRealtimeRuntime": cpu_rt_runtime,
             "NanoCpus": int(cpus * 1e9) if cpus is not None else None, "CpusetCpus": cpuset_cpus,
             "CpusetMems": cpuset_mems, "Memory": memory, "MemoryReservation": memory_reservation,
             "MemorySwap": memory_swap, "PidsLimit": pids_limit}
    if all(v is None for v in given.values()) and restart is None:
        raise CLIError("you must provide one or more flags when using this command")
    # As docker sends it: every resource field, zero (or empty) where no flag was given; PidsLimit only when given.
    body: dict[str, Any] = {k: (v if v is not None else ("" if k.startswith("Cpuset") else 0))
                            for k, v in given.items() if k != "PidsLimit"}
    if pids_limit is not None:
        body["PidsLimit"] = pids_limit
    if restart is not None:
        body["RestartPolicy"] = runopts.restart_policy(restart)
    e = engine()
    warnings: list[str] = []

    def one(c: str) -> None:
        answer = e.post(f"/containers/{path_quote(c)}/update", body=body) or {}
        print(c)
        warnings.extend(answer.get("Warnings") or [])

    try:
        for_each(containers, one)
    finally:
        if warnings:
            print("\n".join(warnings))


@app.command()
def wait(containers: Annotated[list[str], typer.Argument(metavar="CONTAINER")]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    e = engine()

    def one(c: str) -> None:
        result = e.post(f"/containers/{path_quote(c)}/wait") or {}
        if (result.get("Error") or {}).get("Message"):
            raise CLIError(str(result["Error"]["Message"]))
        print(result.get("StatusCode", 0), flush=True)

    for_each(containers, one)


@app.command()
def diff(container: Annotated[str, typer.Argument(metavar="CONTAINER")]) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    changes = engine().get(f"/containers/{path_quote(container)}/changes") or []
    sys.stdout.write("".join(f"{_CHANGE_KINDS.get(c.get('Kind'), '?')} {c.get('Path', '')}\n" for c in changes))
