"""pyengined: the Docker Engine API daemon (dockerd's role), a client of pyruntimed."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from engine import config as config_mod
from engine import memory, runtimes, systemd
from engine.api import listeners
from engine.api.app import build
from engine.api.routers import (archive, attach, builds, container_stats, container_update, containers, events,
                                exec, image_archives, image_make, image_push, images, networks, plugins, registry,
                                swarm, system, system_df, volumes)
from engine.backend import Backend
from engine.events import EventBus
from engine.events_journal import FILENAME as JOURNAL_FILE
from engine.events_journal import Journal
from engine.errors import EngineError
from engine.log import LEVELS as LOG_LEVELS
from engine.log import setup as setup_logging
from engine.metrics.service import parse_address
from engine.reload import Reloader
from runtime.client import Client, tracing

log = logging.getLogger("engine.daemon")
# How long a stopping engine gives the runtime removals of --rm containers it has answered for; the rest are
# swept at its next start.
_DEPARTURES_GRACE = 10.0
_HEADER_BYTES = 1 << 20
# How long a stopping engine lets requests in flight finish. Streams (events, logs -f, attach, wait, stats)
# never would: they are cut after it, and their clients see the end of the stream, as dockerd's do at its stop.
_SHUTDOWN_GRACE = 2.0

ROUTERS = [system.register, system_df.register, images.register, image_archives.register, container_stats.register,
           containers.register, attach.register, exec.register, events.register, container_update.register,
           archive.register, networks.register, volumes.register, swarm.register, plugins.register, registry.register,
           image_make.register, builds.register, image_push.register]


def _claim(data_root: Path) -> int:
    """One engine per data root, held for the process's life: a second would take the first's socket over and
    write the same records (dockerd's pidfile stops it the same way)."""
    fd = os.open(data_root / "pyengined.pid", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SystemExit(f"pyengined: data root {data_root} is in use by another pyengined (pid {holder}): "
                         "stop it first") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


async def serve(cfg: config_mod.Config, load: Callable[[], config_mod.Config]) -> None:
    Path(cfg.data_root).mkdir(parents=True, exist_ok=True, mode=0o711)
    _claim(Path(cfg.data_root))
    if cfg.pidfile:
        _write_pidfile(Path(cfg.pidfile))
    Path(cfg.exec_root).mkdir(parents=True, exist_ok=True, mode=0o711)
    tracing.setup("pyengined", cfg.otel_endpoint)
    journal = Journal(Path(cfg.data_root) / JOURNAL_FILE, cfg.events_retention.retention())
    events = EventBus(journal=journal, last_seq=await asyncio.to_thread(journal.open))
    backend = Backend.build(cfg, Client(cfg.runtime_address, cfg.runtime_namespace), events)
    await backend.networks.ensure_builtin()
    metrics = await backend.metrics.listen(cfg.metrics_addr) if cfg.metrics_addr else None
    app = build(backend, ROUTERS, experimental=cfg.experimental)
    backend.metrics.install(app)
    # Go's server reads a request line and headers of up to 1 MiB (MaxHeaderBytes); aiohttp stops at 8 KiB
    # a line: a commit's --change list or a build's X-Registry-Config for many registries goes past that.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, max_line_size=_HEADER_BYTES,
                           max_field_size=_HEADER_BYTES, shutdown_timeout=_SHUTDOWN_GRACE)
    await runner.setup()
    try:
        await listeners.listen(runner, cfg)
    except listeners.ListenError as e:
        await runner.cleanup()
        await backend.logs.close()
        await backend.runtime.close()
        await journal.close()
        raise SystemExit(f"pyengined: {e}") from None
    systemd.notify("READY=1")
    log.info("serving hosts=%s runtime=%s namespace=%s pid=%d", ",".join(cfg.hosts), cfg.runtime_address,
             cfg.runtime_namespace, os.getpid())
    ready = asyncio.create_task(backend.run_background(), name="engine-background")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloader = Reloader(load, backend, journal)
    reloads: set[asyncio.Task[bool]] = set()

    def hangup() -> None:
        task = asyncio.create_task(reloader.reload(), name="engine-reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        systemd.notify("STOPPING=1")
        ready.cancel()
        await runner.cleanup()
        if metrics is not None:
            await metrics.cleanup()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DEPARTURES_GRACE):
                await backend.departures.settled()
        await backend.networks.close()
        await backend.logs.close()
        await backend.runtime.close()
        await journal.close()
        await asyncio.to_thread(tracing.shutdown)
        for host in cfg.hosts:
            if host.startswith("unix://"):
                Path(host[len("unix://"):]).unlink(missing_ok=True)
        if cfg.pidfile:
            Path(cfg.pidfile).unlink(missing_ok=True)


def _write_pidfile(path: Path) -> None:
    """dockerd's --pidfile: this process's pid, refused while the file names another live process."""
    try:
        pid = int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        pid = 0
    if pid > 0 and pid != os.getpid() and Path(f"/proc/{pid}").exists():
        raise SystemExit(f"pyengined: pid file found, ensure pyengined is not running or delete {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _pool_flag(text: str) -> dict[str, object]:
    """dockerd's `--default-address-pool base=10.10.0.0/16,size=24`, as daemon.json spells it."""
    fields = dict(part.partition("=")[::2] for part in text.split(","))
    if set(fields) != {"base", "size"} or not fields["size"].isdigit():
        raise ValueError(f"--default-address-pool {text!r}: expected base=CIDR,size=BITS")
    return {"base": fields["base"], "size": int(fields["size"])}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="pyengined", description="pyengine Docker Engine API daemon")
    p.add_argument("-H", "--host", action="append", dest="hosts",
                   help=f"socket to listen on, repeatable (default {config_mod.DEFAULT_HOST})")
    p.add_argument("--data-root", help=f"persistent state (default {config_mod.DEFAULT_DATA_ROOT})")
    p.add_argument("--exec-root", help=f"volatile state (default {config_mod.DEFAULT_EXEC_ROOT})")
    p.add_argument("--runtime-address", help=f"pyruntimed socket (default {config_mod.DEFAULT_RUNTIME_ADDRESS})")
    p.add_argument("--runtime-namespace", help="runtime namespace for the engine's objects (default pyengine)")
    p.add_argument("--config-file", help="daemon.json")
    p.add_argument("--registry-mirror", action="append", dest="registry_mirrors", default=[])
    p.add_argument("--insecure-registry", action="append", dest="insecure_registries", default=[])
    p.add_argument("--bridge-name", help="Linux bridge of the default network (default pyengine0)")
    p.add_argument("--bip", help="default bridge's address and subnet length, e.g. 10.200.0.1/24")
    p.add_argument("--insecure-tcp", action="store_true", dest="tls_insecure_tcp",
                   help="allow tcp:// hosts without TLS")
    p.add_argument("--tls", action="store_true", default=None, help="serve tcp hosts with TLS; implied by --tlsverify")
    p.add_argument("--tlsverify", action="store_true", default=None,
                   help="serve tcp hosts with TLS and require client certificates signed by --tlscacert")
    p.add_argument("--tlscacert", help="CA clients' certificates must be signed by (default ~/.docker/ca.pem)")
    p.add_argument("--tlscert", help="the server's TLS certificate (default ~/.docker/cert.pem)")
    p.add_argument("--tlskey", help="the server's TLS key (default ~/.docker/key.pem)")
    p.add_argument("--log-level", choices=list(LOG_LEVELS))
    p.add_argument("--log-driver", help="containers' default log driver: json-file (default), local or none")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="default log driver option, repeatable (e.g. max-size=10m)")
    p.add_argument("--journald-socket",
                   help=f"where journald listens; default {config_mod.DEFAULT_JOURNALD_SOCKET}")
    p.add_argument("--metrics-addr", help="HOST:PORT to serve Prometheus metrics at /metrics on (plain HTTP)")
    p.add_argument("--max-concurrent-downloads", type=_positive, help="layers a pull downloads at once (default 3)")
    p.add_argument("--max-concurrent-uploads", type=_positive, help="layers a push uploads at once (default 5)")
    p.add_argument("--label", action="append", dest="labels", default=[], metavar="KEY=VALUE",
                   help="daemon label shown by docker info, repeatable")
    p.add_argument("--add-runtime", action="append", default=[], metavar="NAME=PATH",
                   help="an OCI runtime containers may name (--runtime), repeatable")
    p.add_argument("--default-runtime", help="the runtime of containers that name none (default runc)")
    p.add_argument("--experimental", action="store_true", default=None, help="enable experimental features")
    p.add_argument("-D", "--debug", action="store_true", default=None, help="debug log level")
    p.add_argument("--dns", action="append", default=[], help="DNS server of containers that set none, repeatable")
    p.add_argument("--dns-search", action="append", default=[], help="DNS search domain of containers that set none")
    p.add_argument("--dns-opt", action="append", dest="dns_opts", default=[],
                   help="resolver option of containers that set none, repeatable")
    p.add_argument("--ip", help="host address the default bridge publishes ports on by default (default 0.0.0.0)")
    p.add_argument("-p", "--pidfile", help="file to write the daemon's pid to (default: none)")
    p.add_argument("-G", "--group", dest="socket_group", help="group owning the unix socket (mode 0660)")
    p.add_argument("--mtu", type=_positive, help="the default bridge's MTU (default 1500)")
    p.add_argument("--default-address-pool", action="append", default=[], metavar="base=CIDR,size=BITS",
                   help="where networks without a subnet take theirs, repeatable (default dockerd's pools)")
    p.add_argument("-s", "--storage-driver", help="overlay2 (or overlayfs): the only one, pyruntimed's overlayfs")
    p.add_argument("--exec-opt", action="append", dest="exec_opts", default=[],
                   help="native.cgroupdriver=cgroupfs: the only exec option")
    p.add_argument("--default-ipc-mode", choices=["private", "shareable"],
                   help="IPC mode of containers that set none (default private)")
    p.add_argument("--default-cgroupns-mode", choices=["private", "host"],
                   help="cgroup namespace mode of containers that set none (default: host on cgroup v1, private on v2)")
    args = p.parse_args(argv)
    systemd.claim()

    def load() -> config_mod.Config:
        """The configuration from daemon.json and the flags, checked; read again on SIGHUP."""
        cfg = config_mod.load(args.config_file, {
            "hosts": args.hosts, "data_root": args.data_root, "exec_root": args.exec_root,
            "runtime_address": args.runtime_address, "runtime_namespace": args.runtime_namespace,
            "registry_mirrors": args.registry_mirrors, "insecure_registries": args.insecure_registries,
            "log_level": args.log_level, "bridge_name": args.bridge_name, "bip": args.bip,
            "tls_insecure_tcp": args.tls_insecure_tcp or None, "log_driver": args.log_driver,
            "tls": args.tls, "tlsverify": args.tlsverify, "tlscacert": args.tlscacert, "tlscert": args.tlscert,
            "tlskey": args.tlskey, "labels": args.labels,
            "metrics_addr": args.metrics_addr, "journald_socket": args.journald_socket,
            "max_concurrent_downloads": args.max_concurrent_downloads,
            "max_concurrent_uploads": args.max_concurrent_uploads,
            "runtimes": runtimes.from_flags(args.add_runtime), "default_runtime": args.default_runtime,
            "experimental": args.experimental, "debug": args.debug, "dns": args.dns, "dns_search": args.dns_search,
            "dns_opts": args.dns_opts, "ip": args.ip, "default_ipc_mode": args.default_ipc_mode,
            "default_cgroupns_mode": args.default_cgroupns_mode, "mtu": args.mtu,
            "storage_driver": args.storage_driver, "exec_opts": args.exec_opts, "pidfile": args.pidfile,
            "socket_group": args.socket_group,
            "default_address_pools": [_pool_flag(text) for text in args.default_address_pool],
        })
        if cfg.metrics_addr:
            parse_address(cfg.metrics_addr)
        for opt in args.log_opt:
            key, eq, value = opt.partition("=")
            if not eq:
                raise ValueError(f"--log-opt {opt!r}: expected KEY=VALUE")
            cfg.log_opts[key] = value
        listeners.check(cfg)
        return cfg

    try:
        cfg = load()
    except Exception as e:
        print(f"pyengined: invalid configuration: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(cfg.effective_log_level)
    memory.few_arenas()
    try:
        asyncio.run(serve(cfg, load))
    except (OSError, ValueError, EngineError) as e:
        # A host that cannot serve (a data root under a file, a bridge address that is none, a socket path taken):
        # one line for the operator, the traceback in the log.
        log.error("cannot serve: %s", e, exc_info=True)
        raise SystemExit(f"pyengined: {getattr(e, 'message', None) or e}") from None


if __name__ == "__main__":
    main()
