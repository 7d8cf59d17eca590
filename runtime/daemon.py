"""pyruntimed: the runtime daemon (containerd's role)."""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import grp
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from runtime import config as config_mod
from runtime import loop_setup, malloc
from runtime import telemetry
from runtime.api.app import GRACEFUL_STOP, build
from runtime.log import setup as setup_logging
from runtime.nospace import Directories
from runtime.plugins import builtin
from runtime.plugins.registry import Registry
from runtime.reload import Reloader
from runtime.services import Services
from runtime.sysinfo import probe
from runtime.systemd import claim, notify

log = logging.getLogger("runtime.daemon")


class AlreadyRunning(Exception):
    pass


def lock_root(root: Path) -> int:
    """Hold an exclusive lock on the root for the daemon's life: one daemon per root."""
    root.mkdir(parents=True, exist_ok=True, mode=0o711)
    fd = os.open(root / "pyruntimed.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(f"another pyruntimed is running on root {root}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def bind_socket(path: str, group: str | None) -> socket.socket:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    if p.is_socket():
        # The root lock proves no other daemon owns it: it is a crash leftover.
        p.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    if group:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    sock.listen(1024)
    sock.setblocking(False)
    return sock


MAX_LINE = 64 << 10


async def serve(cfg: config_mod.Config, load: Callable[[], config_mod.Config]) -> None:
    loop_setup.configure(asyncio.get_running_loop())
    Directories.watch(cfg.root, cfg.state)
    telemetry.setup("pyruntimed", cfg.otlp_endpoint)
    registry = Registry()
    builtin.register_all(registry, cfg)
    Path(cfg.state).mkdir(parents=True, exist_ok=True, mode=0o711)
    await registry.load(Path(cfg.root), Path(cfg.state), cfg.plugins)
    try:
        services = Services(
            plugins=registry,
            events=registry.instance(builtin.EVENT),
            namespaces=registry.instance(builtin.SERVICE, "namespaces"),
            images=registry.instance(builtin.SERVICE, "images"),
            content=registry.instance(builtin.CONTENT),
            leases=registry.instance(builtin.LEASE),
            snapshots=registry.instance(builtin.SERVICE, "snapshots"),
            default_snapshotter=registry.instance(builtin.TRANSFER, "pull").default_snapshotter,
            collector=registry.instance(builtin.GC),
            puller=registry.instance(builtin.TRANSFER, "pull"),
            remotes=registry.instance(builtin.TRANSFER, "remotes"),
            containers=registry.instance(builtin.SERVICE, "containers"),
            tasks=registry.instance(builtin.SERVICE, "tasks"),
            rootfs=registry.instance(builtin.SERVICE, "rootfs"),
            ingests=registry.instance(builtin.SERVICE, "ingests"),
            differ=registry.instance(builtin.SERVICE, "diff"),
        )
    except LookupError as e:
        await registry.close()
        raise SystemExit(f"pyruntimed: a required plugin did not load: {e}") from None
    features = probe()
    log.info("host cgroup=v%s missing=%s", features.cgroup_version,
             ",".join(k for k, v in features.model_dump().items() if v is False) or "none")
    api = build(services)
    sock = bind_socket(cfg.address, cfg.socket_group)
    # Signals are the daemon's own (exit 0 on SIGTERM); a client that goes away stops only what streams to it
    # (runtime/api/routing.py keeps other handlers running to their end).
    # A request line carries a container path in its query: PATH_MAX (4096) percent-encoded is up to 12 KiB,
    # past aiohttp's default limit of 8190 (uvicorn's parser had none).
    runner = web.AppRunner(api.app, handle_signals=False, access_log=None, handler_cancellation=True,
                           shutdown_timeout=GRACEFUL_STOP, max_line_size=MAX_LINE, max_field_size=MAX_LINE)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop(sig: int) -> None:
        log.info("signal=%s stopping", signal.Signals(sig).name)
        notify("STOPPING=1")
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop, sig)
    reloader = Reloader(cfg, load, services.puller, services.events)
    reloads: set[asyncio.Task[bool]] = set()

    def hangup() -> None:
        task = asyncio.create_task(reloader.reload(), name="runtime-reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    log.info("serving address=%s root=%s state=%s pid=%d", cfg.address, cfg.root, cfg.state, os.getpid())
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        notify("READY=1")
        await stopping.wait()
    finally:
        await runner.cleanup()
        try:
            os.unlink(cfg.address)
        except FileNotFoundError:
            pass
        await registry.close()
        await asyncio.to_thread(telemetry.shutdown)
        log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pyruntimed", description="pyengine runtime daemon")
    parser.add_argument("--address", help=f"unix socket (default {config_mod.DEFAULT_ADDRESS})")
    parser.add_argument("--root", help=f"persistent state (default {config_mod.DEFAULT_ROOT})")
    parser.add_argument("--state", help=f"volatile state (default {config_mod.DEFAULT_STATE})")
    parser.add_argument("--config", help="TOML configuration file")
    parser.add_argument("--cri-address", help="unix socket of the Kubernetes CRI service (default "
                        "/run/pyengine/cri.sock; the [cri] section of the TOML configures the rest)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    malloc.limit_arenas()
    claim()

    def load() -> config_mod.Config:
        """The TOML with the flags over it; read again on SIGHUP."""
        return config_mod.load(args.config, {"address": args.address, "root": args.root, "state": args.state,
                                             "log_level": args.log_level, "cri_address": args.cri_address})

    try:
        cfg = load()
    except Exception as e:
        print(f"pyruntimed: invalid configuration: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(cfg.log_level)
    try:
        lock_fd = lock_root(Path(cfg.root))
    except AlreadyRunning as e:
        print(f"pyruntimed: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        asyncio.run(serve(cfg, load))
    finally:
        os.close(lock_fd)


if __name__ == "__main__":
    main()
