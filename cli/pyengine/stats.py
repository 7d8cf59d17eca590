"""docker stats: a live table of containers' resource usage, or one sample of it with --no-stream.

Each container's numbers are computed from GET /containers/{id}/stats as the docker CLI computes them
(cli/command/container/stats_helpers.go): CPU % from the change in the container's and the system's CPU
time between two readings, memory without the inactive file cache, block I/O summed by direction.
"""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import sys
import threading
import time
from typing import Annotated, Any

import typer

from cli.common.units import binary_size, human_size
from cli.pyengine.api import CLIError, DaemonError, Engine, path_quote
from cli.pyengine.app import app, engine
from cli.pyengine.formatting import Template

_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
            "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
            "PIDs": "PIDS"}
_REDRAW = 0.5  # seconds between redraws, docker's ticker


def _cpu_percent(sample: dict[str, Any]) -> float:
    cpu, pre = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    return cpu_delta / system_delta * online * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0


def _memory(sample: dict[str, Any]) -> float:
    """Usage without the inactive file cache (cgroup v1's total_inactive_file, v2's inactive_file)."""
    mem = sample.get("memory_stats") or {}
    usage, stats = mem.get("usage", 0), mem.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in stats and stats[key] < usage:
            return float(usage - stats[key])
    return float(usage)


def _block_io(sample: dict[str, Any]) -> tuple[int, int]:
    read = write = 0
    for entry in (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op") or "")[:1].lower()
        if op == "r":
            read += entry.get("value", 0)
        elif op == "w":
            write += entry.get("value", 0)
    return read, write


def row(container: str, sample: dict[str, Any] | None, trunc: bool) -> dict[str, str]:
    """A table row as docker's stats formatter fills it, its fields in the sorted order docker's `json`
    marshals them in; `sample` None is a container whose numbers are unavailable (its stream failed), shown
    as `--`."""
    return dict(sorted(_fields(container, sample, trunc).items()))


def _fields(container: str, sample: dict[str, Any] | None, trunc: bool) -> dict[str, str]:
    if sample is None:
        return {"ID": container[:12] if trunc else container, "Container": container, "Name": "--",
                "CPUPerc": "--", "MemUsage": "-- / --", "MemPerc": "--", "NetIO": "--", "BlockIO": "--",
                "PIDs": "--"}
    memory, limit = _memory(sample), float((sample.get("memory_stats") or {}).get("limit", 0))
    networks = (sample.get("networks") or {}).values()
    rx, tx = sum(n.get("rx_bytes", 0) for n in networks), sum(n.get("tx_bytes", 0) for n in networks)
    read, write = _block_io(sample)
    cid, name = str(sample.get("id") or container), str(sample.get("name") or "")
    return {
        "ID": cid[:12] if trunc else cid, "Container": container, "Name": name[1:] if len(name) > 1 else "--",
        "CPUPerc": f"{_cpu_percent(sample):.2f}%",
        "MemUsage": f"{binary_size(memory)} / {binary_size(limit)}",
        "MemPerc": f"{memory / limit * 100 if limit else 0:.2f}%",
        "NetIO": f"{human_size(rx, 3)} / {human_size(tx, 3)}",
        "BlockIO": f"{human_size(read, 3)} / {human_size(write, 3)}",
        "PIDs": str((sample.get("pids_stats") or {}).get("current", 0)),
    }


class _Watched:
    """One container's stream of samples, read on its own thread; `sample` is the latest (None: none came)."""

    def __init__(self, e: Engine, container: str) -> None:
        self.container = container
        self.sample: dict[str, Any] | None = None
        self.first = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(e,), daemon=True)
        self._thread.start()

    def _read(self, e: Engine) -> None:
        try:
            for sample in e.json_stream("GET", f"/containers/{path_quote(self.container)}/stats", {"stream": 1}):
                self.sample = sample
                self.first.set()
        except (CLIError, OSError, ValueError):
            pass
        self.first.set()


def _running_ids(e: Engine, all_: bool) -> list[str]:
    return [c["Id"][:12] for c in e.get("/containers/json", {"all": 1 if all_ else None})]


def _follow_events(e: Engine, watched: dict[str, _Watched], all_: bool, lock: threading.Lock) -> None:
    """Without names, containers come and go with the daemon's events, as in docker: started (or, with
    --all, created) ones join, stopped (or, with --all, removed) ones leave."""
    joins = {"create", "start"} if all_ else {"start"}
    leaves = {"destroy"} if all_ else {"die", "destroy"}
    try:
        for event in e.json_stream("GET", "/events", {"filters": '{"type":{"container":true}}'}):
            cid = str((event.get("Actor") or {}).get("ID") or event.get("id") or "")[:12]
            with lock:
                if event.get("Action") in joins and cid and cid not in watched:
                    watched[cid] = _Watched(e, cid)
                elif event.get("Action") in leaves:
                    watched.pop(cid, None)
    except (CLIError, OSError, ValueError):
        return


def _once(e: Engine, containers: list[str], trunc: bool) -> list[dict[str, str]]:
    rows, errors = [], []
    for c in containers:
        try:
            rows.append(row(c, e.get(f"/containers/{path_quote(c)}/stats", {"stream": 0}), trunc))
        except DaemonError as err:
            errors.append(err.message)
    if errors:
        raise CLIError("\n".join(errors))
    return rows


@app.command()
def stats(
    containers: Annotated[list[str] | None, typer.Argument(metavar="[CONTAINER...]")] = None,
    all_: Annotated[bool, typer.Option("-a", "--all", help="Show all containers (default shows just running).")]
    = False,
    format_: Annotated[str | None, typer.Option("--format", help="Go-template-like format, or 'table ...'.")] = None,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Disable streaming stats and only pull the first "
                                                                "result.")] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Do not truncate output.")] = False,
) -> None:
    """Display a live stream of container(s) resource usage statistics."""
    e = engine()
    template = Template(format_ if format_ not in (None, "", "table") else _FORMAT)
    names = containers or _running_ids(e, all_)
    if no_stream:
        print(template.lines(_once(e, names, not no_trunc), _HEADERS), end="")
        return
    lock = threading.Lock()
    watched = {c: _Watched(e, c) for c in names}
    for w in watched.values():
        w.first.wait()
    if containers:
        errors = [w.container for w in watched.values() if w.sample is None]
        if errors:
            # The reason is the daemon's: ask once more to word it.
            _once(e, errors, True)
    else:
        threading.Thread(target=_follow_events, args=(e, watched, all_, lock), daemon=True).start()
    try:
        while True:
            with lock:
                rows = [row(w.container, w.sample, not no_trunc) for w in watched.values()]
            lines = template.lines(rows, _HEADERS).split("\n")
            # Home, each line over the old one, then clear what is left below: one write, so no flicker.
            sys.stdout.write("\x1b[H" + "".join(line + "\x1b[K\n" for line in lines[:-1]) + "\x1b[J")
            sys.stdout.flush()
            time.sleep(_REDRAW)
    except KeyboardInterrupt:
        raise SystemExit(0) from None
