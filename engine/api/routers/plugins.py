"""Managed plugins: this engine has none, and says so in dockerd's shapes.

Clients list plugins before they act (`docker plugin ls`, compose, the SDK) and read a 404
on the list as a broken daemon: the list is empty. A named plugin is one that is not
installed (dockerd's 404); installing or building one is refused plainly.
"""
from __future__ import annotations

from aiohttp import web

from engine.api.app import Router
from engine.api.responses import json_response
from engine.errors import NotFound, NotImplemented_


def register(r: Router, _: object) -> None:
    async def list_plugins(_: web.Request) -> web.Response:
        return json_response([])

    async def not_installed(request: web.Request) -> web.Response:
        raise NotFound(f'plugin "{request.match_info["name"]}" not found')

    async def unsupported(_: web.Request) -> web.Response:
        raise NotImplemented_("managed plugins are not supported by this engine (pyengine)")

    r.add("GET", "/plugins", list_plugins)
    for method, path in (("GET", "/plugins/privileges"), ("POST", "/plugins/pull"), ("POST", "/plugins/create")):
        r.add(method, path, unsupported)
    for method, action in (("GET", "json"), ("POST", "enable"), ("POST", "disable"), ("POST", "set"),
                           ("POST", "push"), ("POST", "upgrade")):
        r.add(method, f"/plugins/{{name:.+}}/{action}", not_installed)
    r.add("DELETE", "/plugins/{name:.+}", not_installed)
