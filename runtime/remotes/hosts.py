"""Which URLs serve a registry: mirrors, the origin, and the scheme for each."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import BaseModel, Field, field_validator
from yarl import URL

from runtime.errors import InvalidArgument
from runtime.reference import (
    DEFAULT_DOMAIN,
    DOCKER_HUB_API_DOMAIN,
    LEGACY_DEFAULT_DOMAIN,
)
from runtime.remotes.auth import Credentials


def canonical_domain(domain: str) -> str:
    """Fold Docker Hub's aliases onto `docker.io` so config keys match references."""
    domain = domain.strip().lower()
    if domain in (LEGACY_DEFAULT_DOMAIN, DOCKER_HUB_API_DOMAIN):
        return DEFAULT_DOMAIN
    return domain


def is_loopback(hostname: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: registries there are served over plain http."""
    hostname = hostname.strip("[]").lower()
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """One place to talk registry API v2 for a registry domain."""

    registry: str  # the reference domain served, e.g. "docker.io"
    base_url: str  # scheme://host[:port][/prefix], no trailing slash, no "/v2"
    is_mirror: bool

    @property
    def host(self) -> str:
        """host[:port]: used for messages and credential/challenge lookup."""
        return URL(self.base_url).raw_authority

    def url(self, api_path: str) -> str:
        """Absolute URL of `/v2/<api_path>`."""
        return f"{self.base_url}/v2/{api_path.lstrip('/')}"


class RegistryHostsConfig(BaseModel):
    """Daemon-level registry settings.

    `mirrors` maps a registry domain (any registry, not only docker.io) to
    mirror entries, each `host[:port]` or a URL with scheme; mirrors are only
    used for pulls and are tried in order before the origin. `insecure` lists
    hosts (`host`, `host:port` or a CIDR) spoken to over plain http;
    `plain_http` forces http everywhere. `credentials` maps a host (registry
    domain or mirror host) to credentials; `docker_config` is the path of a
    docker-style config.json, None meaning the usual $DOCKER_CONFIG /
    ~/.docker lookup.
    """

    mirrors: dict[str, list[str]] = Field(default_factory=dict)
    insecure: list[str] = Field(default_factory=list)
    plain_http: bool = False
    credentials: dict[str, Credentials] = Field(default_factory=dict)
    docker_config: str | None = None

    @field_validator("mirrors")
    @classmethod
    def _check_mirrors(cls, mirrors: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for domain, entries in mirrors.items():
            for entry in entries:
                _split_mirror(entry)  # reject bad entries at config load, not at pull time
            out.setdefault(canonical_domain(domain), []).extend(entries)
        return out

    @field_validator("credentials")
    @classmethod
    def _fold_credential_keys(cls, creds: dict[str, Credentials]) -> dict[str, Credentials]:
        return {canonical_domain(k): v for k, v in creds.items()}

    def is_insecure(self, authority: str) -> bool:
        """True if host[:port] must be spoken to over plain http."""
        if self.plain_http:
            return True
        url = URL(f"//{authority}")
        hostname = (url.host or "").lower()
        if is_loopback(hostname):
            return True
        for entry in self.insecure:
            entry = entry.strip().lower()
            if entry in (authority.lower(), hostname):
                return True
            if "/" in entry:
                try:
                    if ipaddress.ip_address(hostname) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def _scheme_for(self, authority: str) -> str:
        return "http" if self.is_insecure(authority) else "https"

    def endpoints_for(self, domain: str) -> list[Endpoint]:
        """Mirrors for `domain` in configured order, then the origin last."""
        domain = canonical_domain(domain)
        origin_authority = DOCKER_HUB_API_DOMAIN if domain == DEFAULT_DOMAIN else domain
        origin = Endpoint(
            registry=domain,
            base_url=f"{self._scheme_for(origin_authority)}://{origin_authority}",
            is_mirror=False,
        )
        out: list[Endpoint] = []
        for entry in self.mirrors.get(domain, []):
            scheme, authority, prefix = _split_mirror(entry)
            base = f"{scheme or self._scheme_for(authority)}://{authority}{prefix}"
            if base != origin.base_url and all(e.base_url != base for e in out):
                out.append(Endpoint(registry=domain, base_url=base, is_mirror=True))
        out.append(origin)
        return out


def _split_mirror(entry: str) -> tuple[str | None, str, str]:
    """(explicit scheme or None, host[:port], path prefix) of a mirror entry."""
    raw = entry.strip()
    if "://" not in raw:
        raw = "//" + raw
    try:
        url = URL(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid registry mirror {entry!r}: {e}") from None
    if url.scheme not in ("", "http", "https"):
        raise InvalidArgument(f"invalid registry mirror {entry!r}: scheme must be http or https")
    if not url.host or url.query_string or url.fragment:
        raise InvalidArgument(f"invalid registry mirror {entry!r}: expected host[:port] or an http(s) URL")
    prefix = url.path.rstrip("/")
    # Users often paste the API root; endpoints add "/v2" themselves.
    if prefix.endswith("/v2"):
        prefix = prefix[: -len("/v2")]
    return url.scheme or None, url.raw_authority, prefix
