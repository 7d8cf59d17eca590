"""A container's filesystem as its processes see it, and paths resolved in it like a chroot would.

The view is the merged rootfs plus the spec's bind mounts (their sources stand in
for their destinations, as they do inside the container). Resolution walks one
component at a time from an fd of the root: every lookup is an *at call with a
single name and O_NOFOLLOW, a symlink met on the way is read and its target
walked again from the root (absolute) or from where it was found (relative), and
'..' never climbs above the root. Whatever the container put on disk, a path
cannot resolve outside the root or a bind source.

Blocking: run it in a thread.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InvalidArgument, NotFound
from runtime.untrusted_tar import DIR_FLAGS, lstat

MAX_SYMLINKS = 40  # as the kernel's ELOOP limit

Parts = tuple[str, ...]


@dataclass(frozen=True)
class Bind:
    destination: Parts
    source: str
    readonly: bool


def components(path: str) -> list[str]:
    """'/a//b/./c/' → ['a', 'b', 'c']; '..' stays (resolution gives it meaning)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def absolute(path: str) -> str:
    """A spec destination as one absolute clean path ('//a/../b' → '/b'; normpath keeps a leading '//')."""
    return posixpath.normpath("/" + path.lstrip("/"))


def binds_of(spec: dict[str, Any]) -> dict[Parts, Bind]:
    """The spec's bind mounts by destination; a later mount on the same destination wins, as it would."""
    out: dict[Parts, Bind] = {}
    for m in spec.get("mounts") or []:
        options = m.get("options") or []
        if m.get("type") != "bind" and not {"bind", "rbind"} & set(options):
            continue
        dest = tuple(components(absolute(m.get("destination", ""))))
        if dest:
            out[dest] = Bind(dest, m["source"], "ro" in options)
    return out


@dataclass
class Rootfs:
    """A container's filesystem, held open by runtime.rootfs.access for as long as it is used."""

    key: tuple[str, str]  # namespace, container id
    fd: int  # the merged root; owned by the access service, never closed here
    readonly: bool  # the spec's root.readonly
    owner: tuple[int, int]  # uid, gid of the spec's process user
    binds: dict[Parts, Bind] = field(default_factory=dict)


@dataclass
class Location:
    """Where a path landed: entry `name` of directory `dir_fd` ("." for that directory itself).

    `path` is the canonical in-container path; the caller closes `dir_fd`.
    """

    dir_fd: int
    name: str
    path: str
    readonly: bool

    def close(self) -> None:
        os.close(self.dir_fd)

    def lstat(self) -> os.stat_result | None:
        return lstat(self.dir_fd, self.name)


def _canonical(names: list[str]) -> str:
    return "/" + "/".join(names)


def bind_location(bind: Bind, path: str) -> Location:
    """A bind source standing in for its destination (a dir source is its own ".")."""
    try:
        if os.path.isdir(bind.source):
            return Location(os.open(bind.source, DIR_FLAGS & ~os.O_NOFOLLOW), ".", path, bind.readonly)
        parent, name = os.path.split(bind.source)
        return Location(os.open(parent or "/", DIR_FLAGS & ~os.O_NOFOLLOW), name, path, bind.readonly)
    except OSError as e:
        raise NotFound(f"{path}: mount source {bind.source} is unusable: {e.strerror}") from None


class _Walk:
    """The directory reached so far: its fd plus the canonical names leading to it."""

    def __init__(self, rootfs: Rootfs) -> None:
        self.rootfs = rootfs
        self.names: list[str] = []
        self.readonly: list[bool] = [rootfs.readonly]
        self.fd = os.dup(rootfs.fd)

    def close(self) -> None:
        os.close(self.fd)

    def _replace(self, fd: int) -> None:
        os.close(self.fd)
        self.fd = fd

    def enter(self, name: str, loc_fd: int | None, readonly: bool) -> None:
        """Step into `name`: a dir of the current one (loc_fd None) or an already opened bind source."""
        fd = loc_fd if loc_fd is not None else os.open(name, DIR_FLAGS, dir_fd=self.fd)
        self._replace(fd)
        self.names.append(name)
        self.readonly.append(readonly)

    def up(self) -> None:
        """'..': walk again from the root, since only the current dir is held open."""
        if not self.names:
            return
        names = self.names[:-1]
        self._replace(os.dup(self.rootfs.fd))
        self.names, self.readonly = [], [self.rootfs.readonly]
        for name in names:
            bind = self.rootfs.binds.get((*self.names, name))
            if bind is None:
                self.enter(name, None, self.readonly[-1])
            else:
                loc = bind_location(bind, _canonical([*self.names, name]))
                if loc.name != ".":
                    loc.close()
                    raise NotFound(f"{_canonical(names)}: not a directory")
                self.enter(name, loc.dir_fd, bind.readonly)

    def to_root(self) -> None:
        self._replace(os.dup(self.rootfs.fd))
        self.names, self.readonly = [], [self.rootfs.readonly]


# Makes the missing directory at a Location whose dir_fd stays the caller's.
MakeDir = Callable[[Location], None]


def _resolve(rootfs: Rootfs, parts: list[str], *, follow_last: bool, want_dir: bool,
             mkdir: MakeDir | None = None) -> Location:
    shown = _canonical(parts)
    if any("\0" in p for p in parts):
        raise InvalidArgument(f"{shown!r}: a path cannot contain a NUL byte")
    walk = _Walk(rootfs)
    queue = deque(parts)
    links = 0
    try:
        while queue:
            name = queue.popleft()
            if name == "..":
                walk.up()
                continue
            last = not queue and not want_dir
            path = _canonical([*walk.names, name])
            bind = rootfs.binds.get((*walk.names, name))
            if bind is not None:
                loc = bind_location(bind, path)
                if last:
                    return loc
                if loc.name != ".":
                    loc.close()
                    raise NotFound(f"{shown}: {path} is not a directory")
                walk.enter(name, loc.dir_fd, bind.readonly)
                continue
            st = lstat(walk.fd, name)
            if st is None:
                if last:
                    return Location(os.dup(walk.fd), name, path, walk.readonly[-1])
                if mkdir is None:
                    raise NotFound(f"{shown}: {path} does not exist")
                mkdir(Location(walk.fd, name, path, walk.readonly[-1]))
                st = lstat(walk.fd, name)
                assert st is not None
            if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                links += 1
                if links > MAX_SYMLINKS:
                    raise InvalidArgument(f"{shown}: too many levels of symbolic links")
                target = os.readlink(name, dir_fd=walk.fd)
                if target.startswith("/"):
                    walk.to_root()
                queue.extendleft(reversed(components(target)))
                continue
            if last:
                return Location(os.dup(walk.fd), name, path, walk.readonly[-1])
            if not stat.S_ISDIR(st.st_mode):
                raise NotFound(f"{shown}: {path} is not a directory")
            walk.enter(name, None, walk.readonly[-1])
        return Location(os.dup(walk.fd), ".", _canonical(walk.names), walk.readonly[-1])
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise InvalidArgument(f"{shown[:200]}...: file name too long") from None
        if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise
        # The container changed the tree under us (a dir became a symlink, ...): O_NOFOLLOW refused it.
        raise NotFound(f"{shown}: {e.strerror}") from None
    finally:
        walk.close()


def locate(rootfs: Rootfs, path: str, follow_last: bool = False) -> Location:
    """Where `path` is: every component but the last followed; the last only if `follow_last`.

    The entry itself may not exist (Location.lstat() is None); its parent must.
    """
    return _resolve(rootfs, components(path), follow_last=follow_last, want_dir=False)


def open_dir(rootfs: Rootfs, parts: list[str], mkdir: MakeDir | None = None) -> Location:
    """The directory at `parts`, everything followed (Location.name is "."); missing dirs made by `mkdir`."""
    return _resolve(rootfs, parts, follow_last=True, want_dir=True, mkdir=mkdir)
