"""SIGHUP: read the TOML again and apply what can change while the daemon runs.

Live: log_level, [registry] (mirrors, insecure hosts, the credentials file), max_concurrent_downloads and
[events_retention]. Everything else (sockets, roots, snapshotter, plugins, CRI) is read once at startup: a
change there is logged as waiting for a restart. A file that does not parse or validate is refused whole,
with the reason logged, and the running configuration stays.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from runtime.config import Config, RegistryConfig
from runtime.events.exchange import Exchange
from runtime.transfer.pull import Puller

log = logging.getLogger("runtime.reload")

LIVE = ("log_level", "registry", "max_concurrent_downloads", "events_retention")


class Reloader:
    def __init__(self, cfg: Config, load: Callable[[], Config], puller: Puller, events: Exchange) -> None:
        self._cfg = cfg
        self._load = load
        self._puller = puller
        self._events = events
        self._lock = asyncio.Lock()

    async def reload(self) -> bool:
        """Apply the file's live settings; False (and nothing changed) if the file is refused."""
        async with self._lock:
            try:
                new = await asyncio.to_thread(self._load)
                level = logging.getLevelName(new.log_level.upper())
                if not isinstance(level, int):
                    raise ValueError(f"log_level {new.log_level!r}: expected debug, info, warning or error")
            except Exception as e:
                log.error("reload refused, the running configuration is kept: %s", e)
                return False
            cfg = self._cfg
            for key in Config.model_fields:
                if key not in LIVE and getattr(new, key) != getattr(cfg, key):
                    log.warning("reload: %s changed; it takes effect at the next start", key)
            changed = [key for key in LIVE if getattr(new, key) != getattr(cfg, key)]
            logging.getLogger().setLevel(level)
            cfg.log_level = new.log_level
            # In place: the registry remotes hold this very object and read it on each pull.
            for key in RegistryConfig.model_fields:
                setattr(cfg.registry, key, getattr(new.registry, key))
            cfg.max_concurrent_downloads = new.max_concurrent_downloads
            self._puller.set_max_concurrent(new.max_concurrent_downloads)
            cfg.events_retention = new.events_retention
            if self._events.journal is not None:
                self._events.journal.retention = new.events_retention.retention()
            log.info("reloaded configuration changed=%s", ",".join(changed) or "nothing")
            return True
