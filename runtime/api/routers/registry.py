"""POST /registry/login: credentials checked against a registry (runtime/transfer/login.py)."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from runtime import errors
from runtime.api.deps import services
from runtime.services import Services
from runtime.transfer.login import LoginResult, login
from runtime.transfer.registry import Credentials, HostsOverride

router = APIRouter(prefix="/registry", tags=["registry"])


class LoginRequest(BaseModel):
    server: str  # host[:port] of the registry (docker.io for Docker Hub)
    plain_http: bool = False
    # Only `insecure`: a login proves who one is to the registry itself, never to a mirror (mirrors are a 400).
    hosts: HostsOverride = Field(default_factory=HostsOverride)
    credentials: Credentials


@router.post("/login", response_model=LoginResult)
async def check_login(body: LoginRequest, s: Services = Depends(services)) -> LoginResult:
    """Whether the registry accepts the credentials; a refusal is an answer (`ok` false), not an error."""
    if body.hosts.mirrors:
        raise errors.InvalidArgument("hosts.mirrors: mirrors serve pulls only; "
                                     "a login is checked by the registry itself")
    config = s.remotes.hosts_config(body.plain_http, HostsOverride(insecure=body.hosts.insecure))
    transport = s.remotes.transport(config)
    return await login(transport, config, body.server, body.credentials)
