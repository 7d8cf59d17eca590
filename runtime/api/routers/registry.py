"""POST /registry/login: credentials checked against a registry (runtime/transfer/login.py)."""
from __future__ import annotations

import re

from pydantic import BaseModel, Field

from runtime import errors
from runtime.api.routing import Router
from runtime.services import Services
from runtime.transfer.login import LoginResult, login
from runtime.transfer.registry import Credentials, HostsOverride

router = Router("/registry", tags=("registry",))

# A registry's host as references name it: a DNS name or an IPv4 or bracketed IPv6 address, maybe a port.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?")


class LoginRequest(BaseModel):
    server: str  # host[:port] of the registry (docker.io for Docker Hub)
    plain_http: bool = False
    # Only `insecure`: a login proves who one is to the registry itself, never to a mirror (mirrors are a 400).
    hosts: HostsOverride = Field(default_factory=HostsOverride)
    credentials: Credentials


@router.post("/login")
async def check_login(body: LoginRequest, s: Services) -> LoginResult:
    """Whether the registry accepts the credentials; a refusal is an answer (`ok` false), not an error."""
    if body.hosts.mirrors:
        raise errors.InvalidArgument("hosts.mirrors: mirrors serve pulls only; "
                                     "a login is checked by the registry itself")
    if not _HOST.fullmatch(body.server):
        raise errors.InvalidArgument(f"server: {body.server!r} is not a registry host[:port]")
    config = s.remotes.hosts_config(body.plain_http, HostsOverride(insecure=body.hosts.insecure))
    transport = s.remotes.transport(config)
    return await login(transport, config, body.server, body.credentials)
