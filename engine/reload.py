"""SIGHUP: read daemon.json again and apply what dockerd applies live.

Live: log level (and debug), labels, registry mirrors, insecure registries, max concurrent downloads and
uploads, the default log driver and its options, the events journal's retention, and the OCI runtimes (for the
next starts). The rest (hosts, roots, TLS, the bridge, containers' defaults) needs a restart: a change
there is logged and the running value kept. A file that does not load or validate is refused whole:
nothing of it applies, the running configuration stays, and the log says why.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable

from engine.backend import Backend
from engine.config import Config
from engine.events_journal import Journal
from engine.log import LEVELS

log = logging.getLogger("engine.reload")

LIVE = ("log_level", "debug", "labels", "registry_mirrors", "insecure_registries", "max_concurrent_downloads",
        "max_concurrent_uploads", "log_driver", "log_opts", "events_retention", "runtimes", "default_runtime")
# Compared to say that a change needs a restart; the rest of the file's keys are not read after startup either.
RESTART = ("hosts", "data_root", "exec_root", "runtime_address", "runtime_namespace", "bridge_name", "bip", "tls",
           "tlsverify", "tlscacert", "tlscert", "tlskey", "socket_group", "default_ulimits", "experimental",
           "journald_socket", "default_shm_size", "no_new_privileges", "init", "default_ipc_mode",
           "default_cgroupns_mode", "dns", "dns_search", "dns_opts", "ip", "mtu",
           "default_address_pools", "storage_driver", "exec_opts", "pidfile")


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
                self._backend.logs.set_defaults(new.log_driver, new.log_opts)  # checks them: a bad one refuses all
            except Exception as e:
                log.error("reload refused, the running configuration is kept: %s", e)
                return False
            self._apply(new)
            return True

    def _apply(self, new: Config) -> None:
        cfg = self._backend.config
        for key in RESTART:
            if getattr(new, key) != getattr(cfg, key):
                # The default bridge network is made once, with the data root: a restart does not remake it.
                later = ("the default bridge keeps the one it was made with" if key in ("bip", "bridge_name")
                         else "it takes effect at the next start")
                log.warning("reload: %s changed; %s", key, later)
        # As dockerd: what the file (or a flag) no longer names keeps its running value, not the default.
        given = new.model_fields_set
        changed = [key for key in LIVE if key in given and getattr(new, key) != getattr(cfg, key)]
        for key in changed:
            setattr(cfg, key, getattr(new, key))
        registries = self._backend.images.registries
        # dockerd's registry-mirrors apply to Docker Hub only; the engine hands them to the runtime with each pull.
        # In place: the image, push and login services hold these very objects.
        registries.mirrors.clear()
        if cfg.registry_mirrors:
            registries.mirrors["docker.io"] = list(cfg.registry_mirrors)
        registries.insecure[:] = cfg.insecure_registries
        registries.max_downloads, registries.max_uploads = cfg.max_concurrent_downloads, cfg.max_concurrent_uploads
        if self._journal is not None:
            self._journal.retention = cfg.events_retention.retention()
        self._backend.logs.set_defaults(cfg.log_driver, cfg.log_opts)
        logging.getLogger().setLevel(LEVELS[cfg.effective_log_level])
        log.info("reloaded configuration changed=%s", ",".join(changed) or "nothing")
        # dockerd announces a reload with a daemon event carrying the settings now in force (lists as JSON).
        self._backend.events.publish("daemon", "reload", self._backend.system.id, {
            "labels": _json(cfg.labels), "registry-mirrors": _json(cfg.registry_mirrors),
            "insecure-registries": _json(cfg.insecure_registries),
            "max-concurrent-downloads": str(cfg.max_concurrent_downloads),
            "max-concurrent-uploads": str(cfg.max_concurrent_uploads),
            "debug": str(cfg.effective_log_level == "debug").lower(),
            "default-runtime": cfg.default_runtime or "runc", "live-restore": "true",
            "log-level": cfg.log_level, "log-driver": cfg.log_driver, "name": os.uname().nodename})


def _json(values: list[str]) -> str:
    return json.dumps(values, separators=(",", ":"))
