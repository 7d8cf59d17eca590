"""Shipping images: push to a registry, and checking credentials with one (the runtime's /images/push and
/registry/login).

A push streams progress as dicts (see `PushClient.push`); the engine turns them into Docker's push messages.
"""
from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from runtime.client.transport import Transport


class LoginResult(BaseModel):
    """What a registry said to credentials: which challenge it made, its status and its own words."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    url: str
    scheme: str  # none, basic or bearer
    status: int
    message: str = ""
    token_refused: bool = False  # the token server refused them (status, message and body are its)
    body: str = ""  # the refusal's body as sent


class PushAPI(Protocol):
    def push(self, name: str, ref: str | None = None, *, plain_http: bool = False,
             insecure: list[str] | None = None, credentials: dict[str, str] | None = None,
             platform: str | None = None, namespace: str | None = None,
             max_concurrent_uploads: int = 3) -> AsyncGenerator[dict[str, Any], None]: ...

    async def registry_login(self, server: str, credentials: dict[str, str], *, plain_http: bool = False,
                             insecure: list[str] | None = None, namespace: str | None = None) -> LoginResult: ...


class PushClient(Transport):
    def push(self, name: str, ref: str | None = None, *, plain_http: bool = False,
             insecure: list[str] | None = None, credentials: dict[str, str] | None = None,
             platform: str | None = None, namespace: str | None = None,
             max_concurrent_uploads: int = 3) -> AsyncGenerator[dict[str, Any], None]:
        """Push local image `name` as `ref` (default: its name). Lines: `{"status": "pushing", "name", "digest",
        "mediaType", "repository"}`, then per blob `{"status", "digest", "kind", "current", "total"}` with status
        waiting, checking, exists, mounted (with "from"), uploading or done (manifests: done), and last
        `{"status": "complete", "mediaType", "digest", "size"}`. A failure is raised as its typed error."""
        body = {"name": name, "ref": ref, "plain_http": plain_http, "hosts": {"insecure": insecure or []},
                "credentials": credentials, "platform": platform, "max_concurrent_uploads": max_concurrent_uploads}
        return self.stream("POST", "/images/push", json_body=body, namespace=namespace)

    async def registry_login(self, server: str, credentials: dict[str, str], *, plain_http: bool = False,
                             insecure: list[str] | None = None, namespace: str | None = None) -> LoginResult:
        """Whether `server` (host[:port]) accepts the credentials; a refusal is `ok=False`, not an error."""
        body = {"server": server, "plain_http": plain_http, "hosts": {"insecure": insecure or []},
                "credentials": credentials}
        return await self._record(LoginResult, "POST", "/registry/login", json_body=body, namespace=namespace)
