"""Plugin registry: every runtime component registers here and is initialised
in dependency order; `pyctr plugins list` reads the outcome.

A plugin that does not apply on this host raises SkipPlugin(reason) from its
init; one that fails raises anything else. Either way the daemon keeps going
and dependants of a missing plugin are skipped with a reason naming it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Awaitable, Callable

log = logging.getLogger("runtime.plugins")


class SkipPlugin(Exception):
    """Raised by an init when the plugin does not apply here."""


class Status(str, Enum):
    ok = "ok"
    skipped = "skipped"
    error = "error"


@dataclass
class InitContext:
    """What an init sees: daemon config, its own root, and loaded plugins."""

    root: Any
    state: Any
    config: dict[str, Any]
    plugins: "Registry"

    def get(self, type_: str, id_: str | None = None) -> Any:
        return self.plugins.instance(type_, id_)

    def get_all(self, type_: str) -> dict[str, Any]:
        return self.plugins.instances(type_)


@dataclass
class Registration:
    type: str
    id: str
    init: Callable[[InitContext], Awaitable[Any]]
    # "type" means every plugin of that type (loaded first, any may be missing);
    # "type/id" means that exact plugin, which must load.
    requires: list[str] = field(default_factory=list)
    close: Callable[[Any], Awaitable[None]] | None = None

    @property
    def uri(self) -> str:
        return f"{self.type}/{self.id}"


@dataclass
class Loaded:
    registration: Registration
    status: Status
    reason: str = ""
    instance: Any = None


class Registry:
    def __init__(self) -> None:
        self._registrations: list[Registration] = []
        self._loaded: dict[str, Loaded] = {}

    def register(self, registration: Registration) -> None:
        if any(r.uri == registration.uri for r in self._registrations):
            raise ValueError(f"plugin {registration.uri} registered twice")
        self._registrations.append(registration)

    def _order(self) -> list[Registration]:
        by_uri = {r.uri: r for r in self._registrations}
        ordered: list[Registration] = []
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(r: Registration) -> None:
            if r.uri in done:
                return
            if r.uri in visiting:
                raise ValueError(f"plugin dependency cycle at {r.uri}")
            visiting.add(r.uri)
            for req in r.requires:
                deps = [by_uri[req]] if req in by_uri else [x for x in self._registrations if x.type == req]
                for d in deps:
                    visit(d)
            visiting.discard(r.uri)
            done.add(r.uri)
            ordered.append(r)

        for r in self._registrations:
            visit(r)
        return ordered

    async def load(self, root: Any, state: Any, config: dict[str, Any]) -> None:
        for r in self._order():
            missing = [
                req for req in r.requires
                if "/" in req and (req not in self._loaded or self._loaded[req].status != Status.ok)
            ]
            if missing:
                self._loaded[r.uri] = Loaded(r, Status.skipped, f"requires {', '.join(missing)}")
                log.info("plugin=%s status=skipped reason=%r", r.uri, self._loaded[r.uri].reason)
                continue
            ctx = InitContext(root=root, state=state, config=config.get(r.uri, {}), plugins=self)
            try:
                instance = await r.init(ctx)
            except SkipPlugin as e:
                self._loaded[r.uri] = Loaded(r, Status.skipped, str(e))
                log.info("plugin=%s status=skipped reason=%r", r.uri, str(e))
                continue
            except Exception as e:  # one broken plugin must not take the daemon down
                self._loaded[r.uri] = Loaded(r, Status.error, f"{type(e).__name__}: {e}")
                log.warning("plugin=%s status=error reason=%r", r.uri, str(e))
                continue
            self._loaded[r.uri] = Loaded(r, Status.ok, instance=instance)
            log.debug("plugin=%s status=ok", r.uri)

    def instance(self, type_: str, id_: str | None = None) -> Any:
        for uri, loaded in self._loaded.items():
            r = loaded.registration
            if r.type == type_ and (id_ is None or r.id == id_) and loaded.status == Status.ok:
                return loaded.instance
        raise LookupError(f"no loaded plugin {type_}/{id_ or '*'}")

    def instances(self, type_: str) -> dict[str, Any]:
        return {
            loaded.registration.id: loaded.instance
            for loaded in self._loaded.values()
            if loaded.registration.type == type_ and loaded.status == Status.ok
        }

    def list(self) -> list[Loaded]:
        return list(self._loaded.values())

    async def close(self) -> None:
        for loaded in reversed(list(self._loaded.values())):
            r = loaded.registration
            if loaded.status == Status.ok and r.close is not None:
                try:
                    await r.close(loaded.instance)
                except Exception:
                    log.exception("plugin=%s close failed", r.uri)
