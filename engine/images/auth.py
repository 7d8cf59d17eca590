"""POST /auth: credentials checked against the registry they are for, answered in dockerd's words.

The runtime does the registry's round trips (`GET /v2/`, basic or the token flow, http for insecure and
loopback registries); this names the registry from the CLI's `serveraddress` (Docker Hub's
`https://index.docker.io/v1/` included) and turns a refusal into what dockerd says: the token server's words
as dockerd's registry client reads them (`unauthorized: incorrect username or password` from Docker Hub's), or,
for a registry that refused the credentials itself, the status it answered.
"""
from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.errors import InvalidArgument, Unauthorized
from runtime.client.push import PushAPI

_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io", "docker.io"})


class AuthConfig(BaseModel):
    """The body of POST /auth (Docker's AuthConfig); `email` is accepted and unused, as by dockerd (deprecated)."""

    model_config = ConfigDict(extra="ignore")

    username: str = ""
    password: str = ""
    auth: str = ""
    email: str = ""
    serveraddress: str = ""
    identitytoken: str = ""
    registrytoken: str = ""


def registry_host(server: str) -> str:
    """host[:port] of a `serveraddress` (`https://host/v1/`, `host:5000`...); empty is Docker Hub."""
    host = server.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme):]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if not host or host in _HUB_ALIASES else host


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def distribution_error(status: int, body: str) -> str:
    """A registry or token server refusal as dockerd's registry client words it.

    It reads a `details` field (Docker Hub's token server: `unauthorized: incorrect username or password`) or
    the registry API's `errors` list, and nothing else; a 401 whose body says neither is `unauthorized:
    authentication required`.
    """
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("details"), str) and doc["details"]:
        code = {401: "unauthorized", 403: "denied", 429: "toomanyrequests"}.get(status, "unknown")
        return f"{code}: {doc['details']}"
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
        words = [f"{str(e.get('code') or 'unknown').lower().replace('_', ' ')}: {e.get('message') or ''}"
                 for e in errors]
        return words[0] if len(words) == 1 else "errors:\n" + "".join(w + "\n" for w in words)
    if status == 401:
        return "unauthorized: authentication required"
    return f"received unexpected HTTP status: {status} {_phrase(status)}".rstrip()


class RegistryLogin:
    def __init__(self, runtime: PushAPI, insecure: list[str]) -> None:
        self._runtime = runtime
        self._insecure = insecure

    async def login(self, config: AuthConfig) -> dict[str, Any]:
        if config.registrytoken:
            raise InvalidArgument("registrytoken: logging in with a registry token is not supported")
        username, password = config.username, config.password
        if config.auth and not (username or password):
            # `auth` is base64 of user:password, as config.json keeps it.
            try:
                username, _, password = base64.b64decode(config.auth, validate=True).decode().partition(":")
            except ValueError:  # binascii.Error, UnicodeDecodeError and a non-ASCII character are all one
                raise InvalidArgument("auth: not base64 of user:password") from None
        credentials = {"username": username, "password": password}
        if config.identitytoken:
            credentials["identity_token"] = config.identitytoken
        result = await self._runtime.registry_login(registry_host(config.serveraddress), credentials,
                                                    insecure=self._insecure)
        if result.ok:
            return {"Status": "Login Succeeded", "IdentityToken": ""}
        if result.token_refused:
            raise Unauthorized(f'Get "{result.url}": {distribution_error(result.status, result.body)}')
        raise Unauthorized(f"login attempt to {result.url} failed with status: {result.status} "
                           f"{_phrase(result.status)}".rstrip())
