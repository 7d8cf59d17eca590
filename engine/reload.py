"""SIGHUP: read daemon.json again and apply what dockerd applies live.

Live: log level, labels, registry mirrors, insecure registries, max concurrent downloads and uploads, the
default log driver and its options, the events journal's retention, and the OCI runtimes (for the next starts). The rest (hosts, roots, TLS, the bridge) needs a restart: a change
there is logged and the running value kept. A file that does not load or validate is refused whole:
nothing of it applies, the running configuration stays, and the log says why.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from engine.backend import Backend
from engine.config import Config
from engine.events_journal import Journal

log = logging.getLogger("engine.reload")

LIVE = ("log_level", "labels", "registry_mirrors", "insecure_registries", "max_concurrent_downloads",
        "max_concurrent_uploads", "log_driver", "log_opts", "events_retention", "runtimes", "default_runtime")
# Compared to say that a change needs a restart; the rest of the file's keys are not read after startup either.
RESTART = ("hosts", "data_root", "exec_root", "runtime_address", "runtime_namespace", "bridge_name", "bip", "tls",
           "tlsverify", "tlscacert", "tlscert", "tlskey", "socket_group", "default_ulimits", "experimental",
           "journald_socket")


class Reloader:
    def __init__(self, load: Callable[[], Config], backend: Backend, journal: Journal | None) -> None:
        self._load = load
        self._backend = backend
        self._journal = journal
        self._lock = asyncio.Lock()

    async def reload(self) -> bool:
        """Apply the file's live settings; False (and the running configuration untouched) if it is refused."""
        async with self._lock:
            try:
                new = await asyncio.to_thread(self._load)
                level = logging.getLevelName(new.log_level.upper())
                if not isinstance(level, int):
                    raise ValueError(f"log-level {new.log_level!r}: expected debug, info, warning or error")
                self._backend.logs.set_defaults(new.log_driver, new.log_opts)
                logging.getLogger().setLevel(level)
            except Exception as e:
                log.error("reload refused, the running configuration is kept: %s", e)
                return False
            self._apply(new)
            return True

    def _apply(self, new: Config) -> None:
        cfg = self._backend.config
        for key in RESTART:
            if getattr(new, key) != getattr(cfg, key):
                log.warning("reload: %s changed; it takes effect at the next start", key)
        changed = [key for key in LIVE if getattr(new, key) != getattr(cfg, key)]
        for key in LIVE:
            setattr(cfg, key, getattr(new, key))
        registries = self._backend.images.registries
        # dockerd's registry-mirrors apply to Docker Hub only; the engine hands them to the runtime with each pull.
        # In place: the image, push and login services hold these very objects.
        registries.mirrors.clear()
        if new.registry_mirrors:
            registries.mirrors["docker.io"] = list(new.registry_mirrors)
        registries.insecure[:] = new.insecure_registries
        registries.max_downloads, registries.max_uploads = new.max_concurrent_downloads, new.max_concurrent_uploads
        if self._journal is not None:
            self._journal.retention = new.events_retention.retention()
        log.info("reloaded configuration changed=%s", ",".join(changed) or "nothing")
        # dockerd announces a reload with a daemon event carrying the settings now in force.
        self._backend.events.publish("daemon", "reload", self._backend.system.id, {
            "labels": _go_list(new.labels), "registry-mirrors": _go_list(new.registry_mirrors),
            "insecure-registries": _go_list(new.insecure_registries),
            "max-concurrent-downloads": str(new.max_concurrent_downloads),
            "max-concurrent-uploads": str(new.max_concurrent_uploads), "debug": str(new.log_level == "debug").lower(),
            "log-level": new.log_level, "log-driver": new.log_driver, "name": os.uname().nodename})


def _go_list(values: list[str]) -> str:
    """A list as dockerd's event attributes print it (Go's %v): [a b]."""
    return "[" + " ".join(values) + "]"
