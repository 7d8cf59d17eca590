"""Checking credentials against a registry, as a login does: `GET /v2/` answered with them.

The registry's challenge says how: basic (the credentials on the request) or a bearer token asked of its
token server with them (no scope: a login only proves who one is). The answer is what happened, in the
registry's own terms (which flow, the status, its words), for a client to tell its users in its own.
"""
from __future__ import annotations

from pydantic import BaseModel

from runtime.remotes.auth import Credentials, TokenRefused, parse_www_authenticate
from runtime.remotes.hosts import Endpoint, RegistryHostsConfig
from runtime.remotes.registry_errors import registry_error_message
from runtime.remotes.transport import RegistryTransport, read_capped

_MAX_BODY = 16 * 1024


class LoginResult(BaseModel):
    ok: bool
    url: str  # the API root asked: scheme://host/v2/
    scheme: str  # the challenge answered: none (the registry asks for nothing), basic or bearer
    status: int  # the registry's (or, for bearer, the token server's) final HTTP status
    message: str = ""  # the registry's own words for a refusal, when it gave any
    token_refused: bool = False  # the token server refused the credentials (status, message and body are its)
    body: str = ""  # the refusal's body as sent (its first 16 KiB), for clients that read it their own way


async def _get(transport: RegistryTransport, url: str, authorization: str | None) -> tuple[int, list[str], bytes]:
    resp = await transport.get(url, subject="the registry's API root",
                               headers={"Authorization": authorization} if authorization else None)
    try:
        body, _ = await read_capped(resp, _MAX_BODY)
        return resp.status, resp.headers.getall("WWW-Authenticate", []), body
    finally:
        resp.release()


async def login(transport: RegistryTransport, config: RegistryHostsConfig, server: str,
                credentials: Credentials | None) -> LoginResult:
    endpoint: Endpoint = config.endpoints_for(server)[-1]
    url = endpoint.url("")
    status, challenges_raw, body = await _get(transport, url, None)
    if status != 401:
        ok = 200 <= status < 300
        return LoginResult(ok=ok, url=url, scheme="none", status=status, message=registry_error_message(body),
                           body="" if ok else _text(body))
    challenges = parse_www_authenticate(challenges_raw)
    scheme = "bearer" if any(c.scheme == "bearer" for c in challenges) else "basic"
    try:
        authorization = await transport.authorization_for(endpoint, challenges, "", credentials)
    except TokenRefused as e:
        return LoginResult(ok=False, url=url, scheme=scheme, status=e.status, message=registry_error_message(e.body),
                           token_refused=True, body=_text(e.body))
    if authorization is None:
        return LoginResult(ok=False, url=url, scheme=scheme, status=401, message=registry_error_message(body),
                           body=_text(body))
    status, _, body = await _get(transport, url, authorization)
    ok = 200 <= status < 300
    return LoginResult(ok=ok, url=url, scheme=scheme, status=status, message=registry_error_message(body),
                       body="" if ok else _text(body))


def _text(body: bytes) -> str:
    return body[:_MAX_BODY].decode("utf-8", "replace")
