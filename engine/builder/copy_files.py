"""COPY and ADD as Docker defines them: where each source lands, who owns it, what ADD unpacks or fetches.

- The destination is expanded and taken from WORKDIR when relative; several sources (after globbing)
  need a destination ending in `/`; a directory source's contents are copied, not the directory.
- Ownership is root's unless `--chown` names a user (and group) by id, or by name in the image's
  /etc/passwd and /etc/group; `--chmod` (octal) applies to every file and directory copied.
- ADD unpacks local tar archives (plain, gzip, bzip2, xz) and fetches http(s) URLs (mode 0600,
  `--checksum` verified); git URLs and `--checksum` on local sources are refused by name.
- The cache key of a copy is the checksums of what it brings: context files by content (mtime left
  out, as dockerd's), another stage's or image's files by that image's ID and the paths.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import aiohttp

from engine.builder import dockerfile as df
from engine.builder.context import BuildContext, matching
from engine.builder.copy_layer import direct_plan, write_layer
from engine.builder.copy_tar import Ownership, Source, is_archive
from engine.builder.dockerfile import instructions as ins
from engine.builder.image_files import CopyRuntime, ImageFiles, Scratch, put_files, put_into, scratch_dir
from engine.builder.state import StageState
from engine.errors import InvalidArgument
from engine.images.compose import NewLayer
from engine.images.model import LocalImage

ImageSource = Callable[[str, int], Awaitable[LocalImage]]

_WILDCARDS = frozenset("*?[")
_TABLES_KEPT = 64  # /etc/passwd and /etc/group of the last 32 images --chown looked names up in


@dataclass(frozen=True)
class _Fetch:
    """A COPY --from source not yet taken out of its image: sources[index] once fetched."""

    index: int
    image: LocalImage
    image_name: str
    path: str
    into: str  # its name in the step's scratch directory
    pattern: str = ""  # a wildcard source: what it matches under the directory `path`


@dataclass
class PreparedCopy:
    runtime: CopyRuntime
    dest: str
    single_file: bool
    owner: Ownership
    link: bool
    scratch: Scratch
    keyword: str
    sources: list[Source] = field(default_factory=list)
    sums: list[str] = field(default_factory=list)
    dir_hint: bool = False
    fetches: list[_Fetch] = field(default_factory=list)
    _cleanup: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def owner_key(self) -> tuple[int, int, int | None]:
        return self.owner.uid, self.owner.gid, self.owner.chmod

    @property
    def summary(self) -> str:
        """dockerd's history words for the sources: file:<sum>, dir:<sum> or multi:<sum>."""
        digest = hashlib.sha256("\n".join(self.sums).encode()).hexdigest()
        if len(self.sources) > 1:
            return f"multi:{digest}"
        source = self.sources[0]
        kind = "dir" if source.path is not None and source.path.is_dir() and not source.unpack else "file"
        return f"{kind}:{digest}"

    def settle(self) -> None:
        """Decide whether the one source lands at the destination itself (a file) or under it: known
        once its files are here."""
        first = self.sources[0]
        is_dir_source = first.path is not None and first.path.is_dir()
        self.single_file = len(self.sources) == 1 and not self.dir_hint and not is_dir_source and not first.unpack
        if self.single_file:
            self.sources[0] = replace(first, dest=self.dest)

    async def _fetch(self, stack: contextlib.AsyncExitStack) -> None:
        found: dict[int, list[Source]] = {}
        for image_id in dict.fromkeys(f.image.id for f in self.fetches):
            wanted = [f for f in self.fetches if f.image.id == image_id]
            files = await stack.enter_async_context(ImageFiles(self.runtime, wanted[0].image))
            for f in wanted:
                found[f.index] = await self._fetch_one(files, f)
            files.release_soon()  # removed while the layer is made; the stack's end waits for it
        self.fetches.clear()
        self.sources = [s for i, source in enumerate(self.sources) for s in found.get(i, [source])]
        if not self.sources:
            raise InvalidArgument(f"{self.keyword} failed: no source files were specified")
        if len(self.sources) > 1 and not self.dir_hint:
            raise InvalidArgument(f"When using {self.keyword} with more than one source file, the destination "
                                  "must be a directory and end with a /")

    async def _fetch_one(self, files: ImageFiles, f: _Fetch) -> list[Source]:
        """The sources one COPY --from path brings: itself, or what its pattern matches (in dockerd's order)."""
        kind = await files.is_dir(f.path)
        into = await self.scratch.path() / f.into
        if f.pattern:
            if not kind:
                return []
            # The directory's copy tells the names the pattern matches; each is then taken out of the image on
            # its own, so that a symlink among them is followed in the image's root, never in the copy.
            listing = await files.fetch(f.path, into / "listing")
            names = await asyncio.to_thread(matching, listing, f.pattern, self.keyword)
            out = []
            for i, rel in enumerate(names):
                fetched = await files.fetch(posixpath.join(f.path, rel), into / str(i))
                out.append(self._fetched(fetched, posixpath.basename(rel)))
            return out
        if kind is None:
            raise InvalidArgument(f"{self.keyword} failed: stat {f.path}: file does not exist in {f.image_name}")
        fetched = await files.fetch(f.path, into)
        return [self._fetched(fetched, fetched.name)]

    def _fetched(self, path: Path, name: str) -> Source:
        # A file goes under the destination by its name unless it turns out to be the only source (settle).
        return Source(dest=self.dest if path.is_dir() else posixpath.join(self.dest, name), path=path, name=name)

    async def layer(self, state: StageState, lease: str) -> NewLayer:
        async with contextlib.AsyncExitStack() as stack:
            if self.fetches:
                # COPY --from's files come out of their image only now, on a cache miss: the key needed only
                # the image's ID and the paths.
                await self._fetch(stack)
                self.settle()
            return await put_files(self.runtime, state, self.sources, self.owner, self.dest,
                                   await self.scratch.path(), lease, single_file=self.single_file, link=self.link)

    async def __aenter__(self) -> PreparedCopy:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._cleanup.aclose()


class CopyFiles:
    def __init__(self, runtime: CopyRuntime, work_root: Path) -> None:
        self.runtime = runtime
        self.work_root = work_root
        self._tables: OrderedDict[tuple[str, str], list[list[str]]] = OrderedDict()

    async def prepare(self, state: StageState, step: ins.Copy, image_source: ImageSource,
                      context: BuildContext) -> PreparedCopy:
        env, esc = state.scope.env(), state.escape
        raw_dest = df.expand(step.dest, env, esc)
        dest = posixpath.join(str(state.config.get("WorkingDir") or "/"), raw_dest)
        dir_hint = raw_dest.endswith("/") or raw_dest in (".", "..") or raw_dest.endswith(("/.", "/.."))
        dest = posixpath.normpath(dest)
        stack = contextlib.AsyncExitStack()
        work = Scratch(self.work_root)
        stack.push_async_callback(work.close)
        try:
            owner = await self._owner(state, step, env, work)
            prepared = PreparedCopy(self.runtime, dest, False, owner, step.link, work, step.keyword,
                                    dir_hint=dir_hint, _cleanup=stack)
            if step.checksum and not all(s.startswith(("http://", "https://")) for s in step.sources):
                raise InvalidArgument(f"{step.keyword} --checksum can only be used with HTTP(S) sources")
            if step.contents:
                for doc in step.contents:
                    text = df.expand_heredoc(doc.content, env) if doc.expand else doc.body
                    data = text.encode()
                    prepared.sources.append(Source(dest=posixpath.join(dest, doc.name), content=data,
                                                   name=doc.name))
                    prepared.sums.append("sha256:" + hashlib.sha256(data).hexdigest())
            sources = [df.expand(s, env, esc) for s in step.sources]
            if step.from_:
                await self._from_image(prepared, step, sources, state, image_source)
            else:
                for source in sources:
                    await self._from_context(prepared, step, source, context, work)
            if not prepared.sources:
                raise InvalidArgument(f"{step.keyword} failed: no source files were specified")
            several = len(prepared.sources) > 1
            if several and not dir_hint:
                raise InvalidArgument(f"When using {step.keyword} with more than one source file, the "
                                      "destination must be a directory and end with a /")
            if not prepared.fetches:
                prepared.settle()
            return prepared
        except BaseException:
            await stack.aclose()
            raise

    async def make_dir(self, state: StageState, path: str, lease: str) -> NewLayer | None:
        """WORKDIR's directory, made (root's, 0755) when the image lacks it; None when it is there."""
        async with scratch_dir(self.work_root) as work:
            if state.image is None:
                return await put_files(self.runtime, state, [], Ownership(), path, work, lease,
                                       single_file=False, link=False)
            # One container answers whether the directory is there and, if not, takes it.
            async with ImageFiles(self.runtime, state.image) as files:
                found = await files.is_dir(path)
                if found:
                    return None
                if found is False and await files.resolves_to_file(path):
                    raise InvalidArgument(f"Cannot mkdir: {path} is not a directory")  # dockerd's, at this step
                target = posixpath.normpath(path)
                if found is None:
                    build = await direct_plan(self.runtime, files.id, target, [])
                    if build is not None:
                        files.release_soon()
                        return await write_layer(self.runtime, build, Ownership(), lease)
                parents = [] if found is False else [
                    *await files.missing_parents(posixpath.dirname(target)), target]
                return await put_into(files, parents, [], Ownership(), work, lease)

    async def _owner(self, state: StageState, step: ins.Copy, env: dict[str, str], work: Scratch) -> Ownership:
        chmod: int | None = None
        if step.chmod:
            try:
                chmod = int(step.chmod, 8)
            except ValueError:
                raise InvalidArgument(f"invalid chmod parameter: {step.chmod!r} is not an octal mode") from None
        chown = df.expand(step.chown, env, state.escape) if step.chown else ""
        if not chown:
            return Ownership(chmod=chmod)
        user, _, group = chown.partition(":")
        uid = await self._id(state, user, "passwd", work)
        gid = await self._id(state, group, "group", work) if group else (
            uid if user.isdigit() else await self._primary_gid(state, user, work))
        return Ownership(uid, gid, chmod)

    async def _id(self, state: StageState, name: str, table: str, work: Scratch) -> int:
        if name.isdigit():
            return int(name)
        for fields in await self._table(state, table, work):
            if fields[0] == name and len(fields) > 2 and fields[2].isdigit():
                return int(fields[2])
        kind = "user" if table == "passwd" else "group"
        raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: can't find {kind} "
                              f"{name}: no matching entries in {table} file")

    async def _primary_gid(self, state: StageState, user: str, work: Scratch) -> int:
        for fields in await self._table(state, "passwd", work):
            if fields[0] == user and len(fields) > 3 and fields[3].isdigit():
                return int(fields[3])
        return 0

    async def _table(self, state: StageState, table: str, work: Scratch) -> list[list[str]]:
        if state.image is None:
            return []
        key = (state.image.id, table)
        if key not in self._tables:
            # An image's files never change under its ID: both tables are read once, in one container.
            read: dict[str, list[list[str]]] = {}
            async with ImageFiles(self.runtime, state.image) as files:
                for name in ("passwd", "group"):
                    if await files.is_dir(f"/etc/{name}") is None:
                        read[name] = []
                        continue
                    path = await files.fetch(f"/etc/{name}", await work.path() / f"etc-{name}")
                    read[name] = [line.split(":") for line in path.read_text(errors="replace").splitlines() if line]
            for name, rows in read.items():
                self._tables[(state.image.id, name)] = rows
            while len(self._tables) > _TABLES_KEPT:
                self._tables.popitem(last=False)
        self._tables.move_to_end(key)
        return self._tables[key]

    async def _from_image(self, prepared: PreparedCopy, step: ins.Copy, sources: list[str], state: StageState,
                          image_source: ImageSource) -> None:
        name = df.expand(step.from_, state.scope.global_values, state.escape)
        image = await image_source(name, step.start_line)
        for index, source in enumerate(sources):
            path = posixpath.normpath(posixpath.join("/", source))
            parts = path.strip("/").split("/")
            plain = next((i for i, part in enumerate(parts) if _WILDCARDS & set(part)), len(parts))
            # A pattern's files come from the directory above its first wildcard, matched there.
            base, pattern = "/" + "/".join(parts[:plain]), "/".join(parts[plain:])
            prepared.fetches.append(_Fetch(len(prepared.sources), image, name, base, f"from-{index}", pattern))
            prepared.sources.append(Source(dest=prepared.dest, name=posixpath.basename(path)))
            prepared.sums.append(f"{image.id}:{path}")

    async def _from_context(self, prepared: PreparedCopy, step: ins.Copy, source: str, context: BuildContext,
                            work: Scratch) -> None:
        if step.keyword == "ADD" and source.startswith(("http://", "https://")):
            await self._download(prepared, step, source, work)
            return
        if step.keyword == "ADD" and (source.startswith("git@") or source.endswith(".git")
                                      or urllib.parse.urlsplit(source).scheme in ("git", "ssh")):
            raise InvalidArgument(f"ADD {source}: git sources are not supported by this builder")
        resolved, digest = await context.resolve_with_checksum([source], instruction=step.keyword)
        prepared.sums.append(digest)
        for item in resolved:
            unpack = step.keyword == "ADD" and item.path.is_file() and is_archive(item.path)
            prepared.sources.append(Source(dest=posixpath.join(prepared.dest, item.name) if not item.path.is_dir()
                                           and not unpack else prepared.dest, path=item.path, unpack=unpack,
                                           name=item.name))

    async def _download(self, prepared: PreparedCopy, step: ins.Copy, url: str, work: Scratch) -> None:
        name = posixpath.basename(urllib.parse.urlsplit(url).path) or "download"
        path = await work.path() / f"url-{len(prepared.sources)}" / name
        path.parent.mkdir()
        digest = hashlib.sha256()
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                if resp.status != 200:
                    raise InvalidArgument(f"ADD failed: {url}: the server answered {resp.status} {resp.reason}")
                with open(path, "wb") as f:
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        digest.update(chunk)
                        await asyncio.to_thread(f.write, chunk)
        except (aiohttp.ClientError, TimeoutError) as e:
            # The Dockerfile's URL, not the daemon, is at fault: the client is told, the log need not say more.
            raise InvalidArgument(f"ADD failed: {url}: {str(e) or type(e).__name__}") from None
        path.chmod(0o600)  # what Docker gives a file ADD fetched
        got = "sha256:" + digest.hexdigest()
        if step.checksum and step.checksum != got:
            raise InvalidArgument(f"ADD failed: the checksum of {url} is {got}, not {step.checksum}")
        prepared.sources.append(Source(dest=posixpath.join(prepared.dest, name), path=path, name=name))
        prepared.sums.append(got)
