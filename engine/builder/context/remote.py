"""POST /build's `remote` parameter: a context (or a lone Dockerfile) fetched over http(s), as dockerd does.

- A git URL (dockerd's IsGitURL: "git://", "git@", "ssh://", "github.com/", or an
  http(s) URL ending in ".git" with an optional "#ref:dir") is fetched with git
  (engine.builder.context.git). dockerd's "client-session" (BuildKit's session) is refused.
- Other http(s) URLs are fetched; an answer of 400 or more fails the build with the
  status and the body's text. What the body is comes from its Content-Type; with none
  or "application/octet-stream", from its first 100 bytes (Go's content sniffing,
  reduced to what matters here: gzip's magic, or text). "text/plain" is a Dockerfile
  alone (a build without context); tar, gzip, bzip2, xz and octet-stream are a context
  tar; anything else is refused.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from engine.errors import EngineError, Forbidden, InvalidArgument, NotFound, Unauthorized

TEXT = "text/plain"
_PREAMBLE = 100
_CHUNK = 1 << 16
_GIT_FRAGMENT = re.compile(r"\.git(?:#.+)?$")
_GIT_PREFIXES = ("git://", "github.com/", "git@", "ssh://")
_ACCEPTABLE = re.compile(r"(?:application/(?:(?:x\-)?tar|octet\-stream|((?:x\-)?(?:gzip|bzip2?|xz)))|(?:text/plain))")
_BINARY = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_BY_STATUS: dict[int, type[EngineError]] = {400: InvalidArgument, 401: Unauthorized, 403: Forbidden,
                                             404: NotFound}


def is_url(remote: str) -> bool:
    return remote.startswith(("http://", "https://"))


def is_git(remote: str) -> bool:
    return (is_url(remote) and _GIT_FRAGMENT.search(remote) is not None) or remote.startswith(_GIT_PREFIXES)


def check(remote: str) -> None:
    """Refuse, before any work, a `remote` this engine will not fetch."""
    if remote == "client-session":
        raise InvalidArgument("experimental session with v1 builder is no longer supported, "
                              "use builder version v2 (BuildKit) instead")
    if not is_git(remote) and not is_url(remote):
        raise InvalidArgument(f"remoteURL ({remote}) could not be recognized as URL")


def sniff(preamble: bytes) -> str:
    if preamble.startswith(b"\x1f\x8b\x08"):
        return "application/x-gzip"
    if any(b in _BINARY for b in preamble):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


@asynccontextmanager
async def fetch(url: str) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
    """(the accepted media type, the body's bytes) of `url`, checked as dockerd checks a remote context."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            if resp.status >= 400:
                body = (await resp.content.read(4096)).decode("utf-8", "replace").strip()
                msg = f"failed to GET {url} with status {resp.status} {resp.reason}: {body}"
                raise _BY_STATUS.get(resp.status, InvalidArgument)(msg)
            preamble = await resp.content.read(_PREAMBLE)
            if not preamble:
                raise InvalidArgument(f"error detecting content type for remote {url}: empty response")
            declared = resp.headers.get("Content-Type", "")
            found = _ACCEPTABLE.search(declared if declared not in ("", "application/octet-stream")
                                       else sniff(preamble))
            if found is None:
                raise InvalidArgument(f"error detecting content type for remote {url}: "
                                      f"unsupported Content-Type {declared!r}")

            async def chunks() -> AsyncIterator[bytes]:
                yield preamble
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    yield chunk

            yield found.group(0), chunks()
    except aiohttp.ClientError as e:
        raise InvalidArgument(f"error downloading remote context {url}: {e}") from e
