"""What the executor gets of a build's context: its directory, its Dockerfile, COPY's sources and keys.

The directory is the build's alone (made by ContextStore, removed by `close`), filled
once and never changed afterwards, so resolving and hashing need no locks; both walk
the disk and run in threads.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType

from engine.builder.context.checksum import Memo, checksum
from engine.builder.context.dockerignore import DockerIgnore
from engine.builder.context.sources import ContextSource, resolve_sources


class BuildContext:
    def __init__(self, directory: Path, dockerfile_name: str, dockerfile: str, ignore: DockerIgnore | None,
                 release: Callable[[Path], Awaitable[None]], hashes: Memo | None = None) -> None:
        """`hashes`: the files' content hashes taken as the context was unpacked."""
        self.directory = directory
        # The Dockerfile's path in the context as found ("dockerfile" when the lowercase fallback
        # applied; the random `.dockerfile.<hex>` the docker CLI adds for a -f outside the context).
        self.dockerfile_name = dockerfile_name
        self.dockerfile = dockerfile
        self.ignore = ignore
        self._release = release
        self._memo: Memo = dict(hashes or {})
        self._closed = False

    @property
    def ignore_patterns(self) -> list[str]:
        """The .dockerignore's patterns as Docker reads them ('!' exceptions included), in order."""
        return list(self.ignore.lines) if self.ignore is not None else []

    async def resolve(self, sources: Sequence[str], *, allow_wildcards: bool = True,
                      instruction: str = "COPY") -> list[ContextSource]:
        """COPY/ADD's sources (see engine.builder.context.sources); InvalidArgument with dockerd's words."""
        return await asyncio.to_thread(resolve_sources, self.directory, list(sources),
                                       allow_wildcards=allow_wildcards, instruction=instruction)

    async def checksum(self, sources: Sequence[ContextSource]) -> str:
        """The cache key of what `sources` bring (see engine.builder.context.checksum)."""
        return await asyncio.to_thread(checksum, list(sources), self._memo)

    async def resolve_with_checksum(self, sources: Sequence[str], *,
                                    instruction: str = "COPY") -> tuple[list[ContextSource], str]:
        """`resolve` and then `checksum` of what it found, in one trip to a thread."""
        def both() -> tuple[list[ContextSource], str]:
            found = resolve_sources(self.directory, list(sources), instruction=instruction)
            return found, checksum(found, self._memo)
        return await asyncio.to_thread(both)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._release(self.directory)

    async def __aenter__(self) -> BuildContext:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
