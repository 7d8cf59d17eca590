"""Registry credentials and the WWW-Authenticate challenge/token dance."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field
from yarl import URL

from runtime.errors import InvalidArgument, Unauthenticated
from runtime.reference import (
    DEFAULT_DOMAIN,
    DOCKER_HUB_API_DOMAIN,
    LEGACY_DEFAULT_DOMAIN,
)
from runtime.remotes.registry_errors import registry_error_message

# OAuth2 refresh-token grants require a client_id.
_CLIENT_ID = "pyengine"
# Per the token spec a token without expires_in lives 60 seconds.
_DEFAULT_TOKEN_TTL = 60.0
# Refresh a little early so a token does not expire between check and use.
_TOKEN_EXPIRY_SLACK = 5.0
_MAX_TOKEN_RESPONSE = 1 << 20


class Credentials(BaseModel):
    """Username/password, or an identity (OAuth2 refresh) token from `docker login`."""

    model_config = ConfigDict(frozen=True)

    username: str = ""
    password: str = Field(default="", repr=False)
    identity_token: str | None = Field(default=None, repr=False)

    @property
    def has_basic(self) -> bool:
        return bool(self.username or self.password)


def docker_config_host(key: str) -> str:
    """Normalise a config.json `auths` key or a registry host to one lookup key.

    Keys come as `host`, `https://host`, `https://host/v1/`; Docker Hub appears
    as `https://index.docker.io/v1/`.
    """
    key = key.strip().lower()
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
            break
    key = key.split("/", 1)[0]
    if key in (LEGACY_DEFAULT_DOMAIN, DOCKER_HUB_API_DOMAIN):
        return DEFAULT_DOMAIN
    return key


def parse_docker_config(data: Mapping[str, object]) -> dict[str, Credentials]:
    """Credentials per normalised host from a parsed config.json."""
    auths = data.get("auths")
    if auths is None:
        return {}
    if not isinstance(auths, dict):
        raise InvalidArgument("docker config: 'auths' must be an object")
    out: dict[str, Credentials] = {}
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        username = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        encoded = entry.get("auth")
        if encoded:
            try:
                decoded = base64.b64decode(str(encoded), validate=True).decode()
            except ValueError:  # binascii.Error, UnicodeDecodeError and a non-ASCII character are all one
                raise InvalidArgument(f"docker config: invalid base64 'auth' for {key!r}") from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise InvalidArgument(f"docker config: 'auth' for {key!r} is not user:password")
        identity = entry.get("identitytoken") or None
        if not (username or password or identity):
            # An empty entry is what `docker login` with a credential helper leaves.
            continue
        out[docker_config_host(key)] = Credentials(
            username=username, password=password, identity_token=str(identity) if identity else None
        )
    return out


def default_docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


class DockerConfigFile:
    """Credentials read from a docker config.json, re-read when the file changes.

    Re-reading on change means a `docker login` after the daemon started counts.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._explicit = Path(path) if path is not None else None
        self._stamp: tuple[Path, int, int] | None = None
        self._creds: dict[str, Credentials] = {}

    @property
    def path(self) -> Path:
        return self._explicit if self._explicit is not None else default_docker_config_path()

    def get(self, host: str) -> Credentials | None:
        path = self.path
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (path, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(path.read_bytes())
            except (OSError, ValueError) as e:
                raise InvalidArgument(f"docker config {path}: {e}") from None
            if not isinstance(data, dict):
                raise InvalidArgument(f"docker config {path}: top level must be an object")
            self._creds = parse_docker_config(data)
            self._stamp = stamp
        return self._creds.get(docker_config_host(host))


class CredentialStore:
    """Configured credentials first, then docker config.json."""

    def __init__(self, static: Mapping[str, Credentials], docker_config: DockerConfigFile) -> None:
        self._static = {docker_config_host(k): v for k, v in static.items()}
        self._docker_config = docker_config

    def lookup(self, host: str) -> Credentials | None:
        return self._static.get(docker_config_host(host)) or self._docker_config.get(host)


class TokenRefused(Unauthenticated):
    """The token server's refusal, with its status and body for callers that pass its own words on (a login)."""

    def __init__(self, message: str, status: int, body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class Challenge:
    scheme: str  # lowercased: "bearer", "basic", ...
    params: dict[str, str] = field(default_factory=dict)  # keys lowercased


def _skip(s: str, i: int, chars: str) -> int:
    while i < len(s) and s[i] in chars:
        i += 1
    return i


def _read_token(s: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(s) and s[i] not in ' \t,="':
        i += 1
    return s[start:i], i


def _read_quoted(s: str, i: int) -> tuple[str, int]:
    """Read a quoted-string starting at the opening quote; backslash escapes one char."""
    out: list[str] = []
    i += 1
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    return "".join(out), i  # unterminated: take what there is rather than fail the pull


def parse_www_authenticate(headers: str | Iterable[str]) -> list[Challenge]:
    """Parse one or more WWW-Authenticate values (RFC 7235) into challenges.

    Quoted values may contain commas and escaped quotes, and one header may
    carry several challenges, so a plain split on ',' is not enough.
    """
    values = [headers] if isinstance(headers, str) else list(headers)
    challenges: list[Challenge] = []
    for value in values:
        current: Challenge | None = None
        i = 0
        while i < len(value):
            i = _skip(value, i, " \t,")
            if i >= len(value):
                break
            if value[i] in '="':
                i += 1  # stray punctuation: skip it instead of looping forever
                continue
            token, i = _read_token(value, i)
            j = _skip(value, i, " \t")
            if current is not None and j < len(value) and value[j] == "=":
                j = _skip(value, j + 1, " \t")
                if j < len(value) and value[j] == '"':
                    param, i = _read_quoted(value, j)
                else:
                    param, i = _read_token(value, j)
                    # token68 forms end in '=' padding; keep it with the value.
                    end = _skip(value, i, "=")
                    param, i = param + value[i:end], end
                current.params[token.lower()] = param
            else:
                current = Challenge(scheme=token.lower())
                challenges.append(current)
                i = j
    return challenges


def basic_authorization(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


# (method, url, headers, body) -> (status, body); the transport supplies it so
# token requests get the same retries, timeouts and proxying as registry calls.
TokenHTTP = Callable[[str, str, Mapping[str, str], bytes | None], Awaitable[tuple[int, bytes]]]


@dataclass
class _Token:
    value: str
    expires_at: float


class Authorizer:
    """Remembers each host's challenge and caches bearer tokens per scope.

    Remembering the challenge lets later requests (every blob of a pull) send
    a token up front instead of paying a 401 round trip each.
    """

    def __init__(self, http: TokenHTTP, clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self._clock = clock
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str, Credentials | None], _Token] = {}
        self._locks: dict[tuple[str, str, Credentials | None], asyncio.Lock] = {}

    def learn(self, host: str, challenges: list[Challenge]) -> None:
        """Record the challenge of a 401 from `host`; bearer is preferred over basic."""
        by_scheme = {c.scheme: c for c in challenges}
        chosen = by_scheme.get("bearer") or by_scheme.get("basic")
        if chosen is None:
            offered = ", ".join(sorted(by_scheme)) or "none"
            raise Unauthenticated(
                f"authentication required by {host} with an unsupported scheme (offered: {offered})"
            )
        if chosen.scheme == "bearer" and not chosen.params.get("realm"):
            raise Unauthenticated(f"authentication required by {host}: bearer challenge without a realm")
        self._challenges[host] = chosen

    def forget_token(self, host: str, scope: str, creds: Credentials | None) -> None:
        self._tokens.pop((host, scope, creds), None)

    async def authorization(self, host: str, scope: str, creds: Credentials | None) -> str | None:
        """The Authorization header value for a request to `host`, or None.

        None means no challenge is known yet or basic auth without credentials;
        the caller decides whether that is fatal.
        """
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return basic_authorization(creds) if creds is not None and creds.has_basic else None
        key = (host, scope, creds)
        cached = self._tokens.get(key)
        if cached is not None and cached.expires_at > self._clock():
            return f"Bearer {cached.value}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        # Parallel layer downloads hit this together; one token request serves all.
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_at > self._clock():
                return f"Bearer {cached.value}"
            token = await self._fetch_token(host, challenge, scope, creds)
            self._tokens[key] = token
            return f"Bearer {token.value}"

    async def _fetch_token(
        self, host: str, challenge: Challenge, scope: str, creds: Credentials | None
    ) -> _Token:
        realm = challenge.params["realm"]
        try:
            realm_url = URL(realm)
        except ValueError:
            realm_url = URL()
        if realm_url.scheme not in ("http", "https") or not realm_url.host:
            raise Unauthenticated(f"authentication failed for {host}: invalid token realm {realm!r}")
        # A push asks for several scopes at once (its repository, and the one a blob is mounted from);
        # a login asks for none.
        scopes = scope.split()
        if challenge.params.get("scope") and challenge.params["scope"] not in scopes:
            scopes.append(challenge.params["scope"])
        service = challenge.params.get("service")

        headers: dict[str, str] = {}
        if creds is not None and creds.identity_token:
            # OAuth2 refresh-token grant: what `docker login` identity tokens are for.
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": _CLIENT_ID, "scope": " ".join(scopes)}
            if service:
                form["service"] = service
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            status, body = await self._http("POST", str(realm_url), headers, urlencode(form).encode())
        else:
            query: list[tuple[str, str]] = [("scope", s) for s in scopes]
            if service:
                query.insert(0, ("service", service))
            if creds is not None and creds.has_basic:
                headers["Authorization"] = basic_authorization(creds)
                query.append(("account", creds.username))
            url = realm_url.extend_query(query)
            status, body = await self._http("GET", str(url), headers, None)

        if status in (401, 403):
            who = f"as {creds.username!r}" if creds is not None and creds.username else "anonymously"
            raise TokenRefused(
                f"authentication failed for {host}: token server {realm_url.origin()} refused "
                f"access {who} (HTTP {status}){_error_suffix(body)}", status, body,
            )
        if status // 100 != 2:
            raise Unauthenticated(
                f"authentication failed for {host}: token server {realm_url.origin()} "
                f"answered HTTP {status}{_error_suffix(body)}"
            )
        try:
            doc = json.loads(body[:_MAX_TOKEN_RESPONSE])
        except ValueError:
            doc = None
        value = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise Unauthenticated(
                f"authentication failed for {host}: token server {realm_url.origin()} returned no token"
            )
        ttl = doc.get("expires_in")
        ttl = float(ttl) if isinstance(ttl, (int, float)) and ttl > 0 else _DEFAULT_TOKEN_TTL
        return _Token(value, self._clock() + max(ttl - _TOKEN_EXPIRY_SLACK, 1.0))


def _error_suffix(body: bytes) -> str:
    text = registry_error_message(body)
    return f": {text}" if text else ""
