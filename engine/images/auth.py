"""POST /auth: credentials checked against the registry they are for, answered in dockerd's words.

The runtime does the registry's round trips (`GET /v2/`, basic or the token flow, http for insecure and
loopback registries); this names the registry from the CLI's `serveraddress` (Docker Hub's
`https://index.docker.io/v1/` included) and turns a refusal into what dockerd says: the token server's own
words (`unauthorized: incorrect username or password`, as Docker Hub's) or, for a registry that refused the
credentials itself, the status it answered.
"""
from __future__ import annotations

import base64
import binascii
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
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidArgument("auth: not base64 of user:password") from None
        credentials = {"username": username, "password": password}
        if config.identitytoken:
            credentials["identity_token"] = config.identitytoken
        result = await self._runtime.registry_login(registry_host(config.serveraddress), credentials,
                                                    insecure=self._insecure)
        if result.ok:
            return {"Status": "Login Succeeded", "IdentityToken": ""}
        if result.token_refused:
            raise Unauthorized(f'Get "{result.url}": unauthorized: {result.message or "authentication required"}')
        try:
            reason = HTTPStatus(result.status).phrase
        except ValueError:
            reason = ""
        raise Unauthorized(f"login attempt to {result.url} failed with status: {result.status} {reason}".rstrip())
