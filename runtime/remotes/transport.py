"""HTTP to registries: one session, retries, auth challenges, redirects, proxies."""
from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import socket
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from runtime.errors import Unauthenticated, Unavailable
from runtime.remotes.auth import (
    Authorizer,
    Challenge,
    Credentials,
    CredentialStore,
    DockerConfigFile,
    parse_www_authenticate,
)
from runtime.remotes.hosts import Endpoint, RegistryHostsConfig, is_loopback
from runtime.remotes.registry_errors import error_for_status

log = logging.getLogger(__name__)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_ERROR_BODY = 64 * 1024
# Enough for parallel layer downloads from a few registries at once without
# letting one pull open hundreds of sockets to a single host.
_CONNECTION_LIMIT = 64
_CONNECTION_LIMIT_PER_HOST = 16


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for 429, 5xx and connection failures.

    `attempts` counts the first try; the delay after failed attempt n is
    base_delay * 2**(n-1), capped at max_delay. A Retry-After header replaces
    the computed delay, capped at max_retry_after.
    """

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_retry_after: float = 30.0

    def backoff(self, attempt: int) -> float:
        return min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def proxy_for(url: URL) -> str | None:
    """The proxy from HTTP(S)_PROXY/NO_PROXY for `url`, as the Docker daemon picks it.

    Loopback hosts are never proxied (Go's net/http rule, which dockerd
    inherits), so a local registry keeps working with a proxy configured.
    """
    host = url.host or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme or "")
    if not proxy:
        return None
    if urllib.request.proxy_bypass(f"{host}:{url.port}" if url.port else host):
        return None
    return proxy


def _loggable(url: URL) -> URL:
    # Redirect targets carry signatures in their query string.
    return url.with_query(None)


def _retryable_status(status: int) -> bool:
    # 501/505 describe the server's capabilities; asking again cannot help.
    return status == 429 or (status >= 500 and status not in (501, 505))


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` bytes of the body; the flag says whether more was sent."""
    buf = bytearray()
    try:
        async for chunk in resp.content.iter_any():
            buf += chunk
            if len(buf) > limit:
                return bytes(buf[:limit]), True
    except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
        raise Unavailable(f"reading response from {resp.url.origin()} failed: {e or type(e).__name__}") from e
    return bytes(buf), False


class RegistryTransport:
    """Sends registry API requests and hands back successful responses.

    Failures come out as the runtime's typed errors after retries; the caller
    owns (and must release) a returned response.
    """

    def __init__(
        self,
        config: RegistryHostsConfig,
        session: aiohttp.ClientSession | None = None,
        *,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 30.0,
        read_timeout: float = 60.0,
        max_redirects: int = 10,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._retry = retry or RetryPolicy()
        # No total timeout: a multi-gigabyte layer may legitimately take hours;
        # a stalled socket is what sock_read catches.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._max_redirects = max_redirects
        self._credentials = CredentialStore(config.credentials, DockerConfigFile(config.docker_config))
        self._authorizer = Authorizer(self._token_http)

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created lazily: aiohttp sessions must be made inside the running loop.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=_CONNECTION_LIMIT, limit_per_host=_CONNECTION_LIMIT_PER_HOST
                ),
                # Proxies are chosen per request by proxy_for(), which exempts loopback.
                trust_env=False,
            )
        return self._session

    def credentials_for(self, endpoint: Endpoint, explicit: Credentials | None) -> Credentials | None:
        """Per-request credentials belong to the origin registry only.

        They were given for that registry; a mirror is a different party and
        gets only what is configured for its own host.
        """
        if explicit is not None and not endpoint.is_mirror:
            return explicit
        return self._credentials.lookup(endpoint.registry if not endpoint.is_mirror else endpoint.host)

    async def send(
        self,
        method: str,
        endpoint: Endpoint,
        api_path: str,
        *,
        repository: str,
        subject: str,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        not_found: str = "not found",
        scope: str | None = None,
        data: bytes | None = None,
    ) -> aiohttp.ClientResponse:
        """Send `method /v2/<api_path>` (or to an absolute URL the registry gave, an upload's Location)
        with `data` as the body; return a 2xx response.

        The token asked for grants `scope` (space-separated scopes), by default pull access to `repository`.
        """
        creds = self.credentials_for(endpoint, credentials)
        scope = scope or f"repository:{repository}:pull"
        host = endpoint.host
        url = URL(api_path if "://" in api_path else endpoint.url(api_path), encoded=True)
        answered_challenge = False
        while True:
            req_headers = dict(headers or {})
            authorization = await self._authorizer.authorization(host, scope, creds)
            if authorization is not None:
                req_headers["Authorization"] = authorization
            resp = await self._with_retries(
                method, url, req_headers, data,
                fail_fast_connect=endpoint.is_mirror, subject=subject,
            )
            if 200 <= resp.status < 300:
                return resp
            body, _ = await read_capped(resp, _MAX_ERROR_BODY)
            resp.release()
            # A 401 from storage we were redirected to is not the registry's challenge.
            if resp.status == 401 and resp.url.origin() == url.origin() and not answered_challenge:
                challenges = parse_www_authenticate(resp.headers.getall("WWW-Authenticate", []))
                if challenges:
                    self._authorizer.learn(host, challenges)
                    # The token we sent (if any) was refused: get a fresh one.
                    self._authorizer.forget_token(host, scope, creds)
                    if await self._authorizer.authorization(host, scope, creds) is None:
                        raise Unauthenticated(
                            f"authentication required by {host} for {subject} and no credentials are configured"
                        )
                    answered_challenge = True
                    continue
            if method == "HEAD" and resp.status in (401, 403, 429):
                # HEAD answers have no body; the registry's explanation (wrong
                # password, access denied, rate limit) is worth one GET to show the user.
                body = await self._error_body(url, req_headers, resp.status, endpoint.is_mirror, subject)
            raise error_for_status(
                resp.status, host=host, subject=subject, body=body,
                authenticated=creds is not None, not_found=not_found,
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )

    async def get(self, url: str, *, subject: str, headers: Mapping[str, str] | None = None) -> aiohttp.ClientResponse:
        """GET an absolute URL outside the v2 API (the v1 search); any status is returned.

        A host that cannot be reached fails at once: a search is asked interactively, and dockerd does not retry.
        """
        return await self._with_retries("GET", URL(url), dict(headers or {}), None, fail_fast_connect=True,
                                        subject=subject)

    async def authorization_for(self, endpoint: Endpoint, challenges: list[Challenge], scope: str,
                                credentials: Credentials | None) -> str | None:
        """The Authorization header answering `challenges` from `endpoint` (a login's own round trip)."""
        self._authorizer.learn(endpoint.host, challenges)
        return await self._authorizer.authorization(endpoint.host, scope, self.credentials_for(endpoint, credentials))

    async def _error_body(
        self, url: URL, headers: dict[str, str], status: int, is_mirror: bool, subject: str
    ) -> bytes:
        resp = await self._with_retries("GET", url, headers, None, fail_fast_connect=is_mirror, subject=subject)
        try:
            if resp.status != status:
                return b""
            body, _ = await read_capped(resp, _MAX_ERROR_BODY)
            return body
        finally:
            resp.release()

    async def _token_http(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        resp = await self._with_retries(
            method, URL(url), dict(headers), body, fail_fast_connect=False, subject="a token"
        )
        try:
            data, _ = await read_capped(resp, _MAX_ERROR_BODY)
            return resp.status, data
        finally:
            resp.release()

    async def _with_retries(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        data: bytes | None,
        *,
        fail_fast_connect: bool,
        subject: str,
    ) -> aiohttp.ClientResponse:
        """Send, retrying 429/5xx and connection failures; the last response is returned as is.

        With fail_fast_connect a refused or unresolvable host fails at once:
        that is a mirror, and the origin is the better next try.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._follow(method, url, headers, data)
            except aiohttp.ClientSSLError as e:
                # Certificate problems do not fix themselves between attempts.
                raise Unavailable(f"TLS error talking to {url.origin()} for {subject}: {e}") from e
            except (TimeoutError, aiohttp.ClientConnectionError) as e:
                reason = str(e) or type(e).__name__
                if attempt >= self._retry.attempts or (
                    fail_fast_connect and isinstance(e, aiohttp.ClientConnectorError)
                ):
                    if isinstance(e, aiohttp.ClientConnectorError):
                        raise Unavailable(dial_failure(method, url, e)) from e
                    raise Unavailable(f"cannot reach {url.origin()} for {subject}: {reason}") from e
                delay = self._retry.backoff(attempt)
                log.info("%s %s failed (%s); retrying in %.1fs", method, _loggable(url), reason, delay)
                await asyncio.sleep(delay)
                continue
            if not _retryable_status(resp.status) or attempt >= self._retry.attempts:
                return resp
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self._retry.max_retry_after:
                return resp  # asked to wait longer than we would: the caller says until when
            delay = (
                min(retry_after, self._retry.max_retry_after)
                if retry_after is not None
                else self._retry.backoff(attempt)
            )
            resp.release()
            log.info("%s %s answered %d; retrying in %.1fs", method, _loggable(url), resp.status, delay)
            await asyncio.sleep(delay)

    async def _follow(
        self, method: str, url: URL, headers: dict[str, str], data: bytes | None
    ) -> aiohttp.ClientResponse:
        """One request, following redirects ourselves to bound them and guard credentials."""
        session = self._get_session()
        headers = dict(headers)
        visited = [url]
        while True:
            resp = await session.request(
                method, url, headers=headers, data=data, allow_redirects=False,
                proxy=proxy_for(url), timeout=self._timeout,
            )
            if resp.status not in _REDIRECT_STATUSES:
                return resp
            location = resp.headers.get("Location")
            resp.release()
            if not location:
                raise Unavailable(f"{url.origin()} answered HTTP {resp.status} without a Location header")
            target = url.join(URL(location, encoded=True))
            if target.scheme not in ("http", "https"):
                raise Unavailable(f"{url.origin()} redirected to {_loggable(target)}: not an http(s) URL")
            if target in visited:
                chain = " -> ".join(str(_loggable(u)) for u in [*visited, target])
                raise Unavailable(f"redirect loop while fetching {_loggable(visited[0])}: {chain}")
            if len(visited) > self._max_redirects:
                raise Unavailable(
                    f"too many redirects (more than {self._max_redirects}) while fetching {_loggable(visited[0])}"
                )
            if target.origin() != url.origin():
                # Registry credentials must not leak to blob storage behind a redirect;
                # redirect targets carry their own (signed URL) authorization.
                headers.pop("Authorization", None)
            if resp.status == 303 and method != "HEAD":
                method, data = "GET", None
            visited.append(target)
            url = target


def dial_failure(method: str, url: URL, e: aiohttp.ClientConnectorError) -> str:
    """A registry that cannot be dialled, in the words of Go's net/http that dockerd passes on (scripts look
    for `connection refused`, `no such host`)."""
    cause = e.os_error
    if isinstance(cause, socket.gaierror):
        dial = f"dial tcp: lookup {e.host}: no such host"
    else:
        reason = os.strerror(cause.errno).lower() if cause.errno else str(cause)
        dial = f"dial tcp {f'[{e.host}]' if ':' in e.host else e.host}:{e.port}: connect: {reason}"
    return f'{method.capitalize()} "{url}": {dial}'
