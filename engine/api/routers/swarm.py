"""Swarm mode, answered as dockerd answers on a node that never joined a swarm.

Tools ask these routes before they act (a compose teardown calls `swarm leave`, `docker info`
users list nodes) and read a 404 as a broken daemon; dockerd outside a swarm answers 503
with one of two messages (daemon/cluster: errNoSwarm, errNoManager). Joining or creating
a swarm is refused plainly: this engine has no swarm mode.
"""
from __future__ import annotations

from aiohttp import web

from engine.api.app import Router
from engine.errors import NotImplemented_, Unavailable

NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                 "this node to swarm and try again.")
NOT_IN_A_SWARM = "This node is not part of a swarm"

# What a manager serves: every one of these is errNoManager outside a swarm.
_MANAGER_ROUTES = [
    ("GET", "/swarm"), ("POST", "/swarm/update"), ("GET", "/swarm/unlockkey"),
    ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("DELETE", "/nodes/{id}"), ("POST", "/nodes/{id}/update"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/{id}"), ("DELETE", "/services/{id}"),
    ("POST", "/services/{id}/update"), ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/secrets/{id}"), ("DELETE", "/secrets/{id}"),
    ("POST", "/secrets/{id}/update"),
    ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/{id}"), ("DELETE", "/configs/{id}"),
    ("POST", "/configs/{id}/update"),
]


def register(r: Router, _: object) -> None:
    async def not_a_manager(_: web.Request) -> web.Response:
        raise Unavailable(NOT_A_MANAGER)

    async def not_in_a_swarm(_: web.Request) -> web.Response:
        raise Unavailable(NOT_IN_A_SWARM)

    async def no_swarm_mode(_: web.Request) -> web.Response:
        raise NotImplemented_("swarm mode is not supported by this engine (pyengine): use docker-compose or "
                              "Kubernetes through its CRI")

    for method, path in _MANAGER_ROUTES:
        r.add(method, path, not_a_manager)
    r.add("POST", "/swarm/leave", not_in_a_swarm)
    r.add("POST", "/swarm/unlock", not_in_a_swarm)
    r.add("POST", "/swarm/init", no_swarm_mode)
    r.add("POST", "/swarm/join", no_swarm_mode)
