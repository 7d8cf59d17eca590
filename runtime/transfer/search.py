"""Searching a registry's index, as `docker search` does: the v1 search API (`GET /v1/search?q=&n=`).

Docker Hub answers it at index.docker.io; most other registries (distribution among them) do not
have it and answer 404, which is raised as NotFound for the caller to word. A term whose first
component looks like a host (a dot, a port or "localhost") searches that registry; any other
term searches Docker Hub, without its "library/" prefix.
"""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel

from runtime.errors import InvalidArgument
from runtime.remotes.auth import Credentials
from runtime.remotes.registry_errors import error_for_status
from runtime.remotes.transport import read_capped
from runtime.transfer.registry import HostsOverride, RemoteFactory

DOCKER_INDEX = "index.docker.io"
MAX_ANSWER = 4 * 1024 * 1024


class SearchResult(BaseModel):
    name: str
    description: str = ""
    star_count: int = 0
    is_official: bool = False
    is_automated: bool = False


class SearchResults(BaseModel):
    index: str
    results: list[SearchResult]


def split_term(term: str) -> tuple[str, str]:
    """(the index's host, or docker.io; the name to ask it for)."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", term.removeprefix("library/")


async def search(factory: RemoteFactory, term: str, limit: int, *, plain_http: bool = False,
                 hosts: HostsOverride | None = None, credentials: Credentials | None = None) -> SearchResults:
    domain, name = split_term(term)
    config = factory.hosts_config(plain_http, hosts)
    authority = DOCKER_INDEX if domain == "docker.io" else domain
    scheme = "http" if config.is_insecure(authority) else "https"
    url = f"{scheme}://{authority}/v1/search?{urlencode({'q': name, 'n': limit})}"
    # The shared pool leaves bodies compressed: ask for plain JSON.
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
    if credentials is not None and credentials.has_basic:
        token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    subject = "the search API (/v1/search)"
    resp = await factory.transport(config).get(url, subject=subject, headers=headers)
    try:
        body, truncated = await read_capped(resp, MAX_ANSWER)
        if resp.status != 200:
            raise error_for_status(resp.status, host=authority, subject=subject, body=body,
                                   authenticated="Authorization" in headers, not_found="no search API")
        if truncated:
            raise InvalidArgument(f"{authority}'s search answer exceeds {MAX_ANSWER} bytes")
    finally:
        resp.release()
    try:
        doc: Any = json.loads(body)
        raw = doc["results"] if isinstance(doc, dict) else None
        if not isinstance(raw, list):
            raise ValueError("no results list")
        results = [SearchResult.model_validate(item) for item in raw]
    except ValueError as e:  # pydantic's ValidationError is one
        raise InvalidArgument(f"{authority} answered the search with something else than its results: {e}") from None
    return SearchResults(index=authority, results=results)
