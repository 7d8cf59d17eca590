"""Remotes for the pull: one image reference at one registry, over runtime.remotes.

The daemon's registry settings (mirrors, insecure hosts, credentials file) are
merged with what a request brings (the engine passes its own mirrors and
insecure registries, a user may pass credentials), and every pull shares one
HTTP connection pool.
"""
from __future__ import annotations

from typing import Any

import aiohttp
from pydantic import BaseModel, Field

from runtime.config import RegistryConfig
from runtime.oci import Descriptor
from runtime.reference import Reference, parse
from runtime.remotes.auth import Credentials
from runtime.remotes.blobs import BlobStream
from runtime.remotes.hosts import Endpoint, RegistryHostsConfig
from runtime.remotes.platforms import select_manifest
from runtime.remotes.resolver import Resolver
from runtime.remotes.transport import RegistryTransport

__all__ = ["Credentials", "HostsOverride", "RegistryRemote", "RemoteFactory"]


class HostsOverride(BaseModel):
    mirrors: dict[str, list[str]] = Field(default_factory=dict)
    insecure: list[str] = Field(default_factory=list)


class RegistryRemote:
    """Satisfies runtime.transfer.pull.Remote for one reference."""

    def __init__(self, ref: Reference, resolver: Resolver, credentials: Credentials | None) -> None:
        self.ref = ref
        self.name = str(ref)
        self._resolver = resolver
        self._credentials = credentials
        self._endpoint: Endpoint | None = None

    async def resolve(self) -> Descriptor:
        self._endpoint, desc = await self._resolver.resolve(self.ref, self._credentials)
        return desc

    async def tags(self) -> list[str]:
        return await self._resolver.tags(self.ref, self._credentials)

    def _where(self) -> Endpoint:
        assert self._endpoint is not None, "resolve() first"
        return self._endpoint

    async def fetch_manifest(self, desc: Descriptor) -> bytes:
        return await self._resolver.fetch_manifest(self._where(), self.ref, desc.digest, self._credentials)

    async def open_blob(self, desc: Descriptor, offset: int) -> BlobStream:
        return await self._resolver.fetch_blob(self._where(), self.ref, desc, offset, self._credentials)

    def select_platform(self, index: dict[str, Any], os: str, arch: str | None, variant: str | None) -> Descriptor:
        return select_manifest(index, os=os, arch=arch, variant=variant)


class RemoteFactory:
    def __init__(self, cfg: RegistryConfig) -> None:
        self._cfg = cfg
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, limit_per_host=16),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60),
            auto_decompress=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def remote(self, ref: str, *, plain_http: bool = False, hosts: HostsOverride | None = None,
                     credentials: Credentials | None = None) -> RegistryRemote:
        parsed = parse(ref)
        return RegistryRemote(parsed, Resolver(self.hosts_config(plain_http, hosts), self._session), credentials)

    def transport(self, config: RegistryHostsConfig) -> RegistryTransport:
        """A transport on the shared connection pool, for requests beside a pull's (the v1 search)."""
        return RegistryTransport(config, self._session)

    def hosts_config(self, plain_http: bool = False, hosts: HostsOverride | None = None) -> RegistryHostsConfig:
        """The daemon's registry settings with a request's own mirrors and insecure hosts added."""
        hosts = hosts or HostsOverride()
        mirrors = {k: list(v) for k, v in self._cfg.mirrors.items()}
        for domain, entries in hosts.mirrors.items():
            mirrors.setdefault(domain, []).extend(entries)
        return RegistryHostsConfig(
            mirrors=mirrors,
            insecure=self._cfg.insecure + hosts.insecure,
            plain_http=plain_http,
            docker_config=self._cfg.config_path,
        )
