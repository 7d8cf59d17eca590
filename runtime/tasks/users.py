"""Resolve a Docker `--user` string against the image's own /etc/passwd and /etc/group.

The rootfs is untrusted image content: every path component is opened relative to the
rootfs and symlinks are resolved as if the rootfs were `/` (absolute targets restart at
the rootfs, `..` stops there), so a hostile `/etc/passwd -> /etc/passwd` symlink can
never make us read the host's files.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from collections import deque
from dataclasses import dataclass, field

from runtime.errors import InvalidArgument, NotFound

# Linux's own bound on symlink traversals in one lookup.
_MAX_SYMLINKS = 40
# /etc/passwd of a real image is a few KiB; refuse to slurp an arbitrarily large file.
_MAX_DB_SIZE = 16 * 1024 * 1024
# runc refuses ids at or above 2^31.
_MAX_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")


class UnknownName(InvalidArgument):
    """A user or group name the container's files do not have (yet: they may by its start)."""


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


@dataclass(frozen=True)
class _PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def open_in_root(root_fd: int, path: str) -> int | None:
    """An O_PATH fd for `path` resolved inside the root, or None when it does not exist."""
    parts = deque(path.split("/"))
    dirs = [os.dup(root_fd)]  # fds of the directories walked so far; dirs[0] is the root
    links = 0
    try:
        while parts:
            name = parts.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if len(dirs) > 1:
                    os.close(dirs.pop())
                continue
            try:
                fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirs[-1])
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                # Read the link we opened (readlinkat with an empty name), not whatever
                # the name may point at by now.
                try:
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                links += 1
                if links > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, f"too many levels of symbolic links resolving {path}")
                if target.startswith("/"):
                    while len(dirs) > 1:
                        os.close(dirs.pop())
                parts.extendleft(reversed(target.split("/")))
                continue
            dirs.append(fd)
        if len(dirs) == 1:
            return None  # the root itself is never a passwd file
        return dirs.pop()
    finally:
        for fd in dirs:
            os.close(fd)


def read_rootfs_file(rootfs: str, path: str) -> str | None:
    """Text of a regular file inside the rootfs, or None if absent, looping or not a regular file."""
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError) as e:
        raise NotFound(f"rootfs {rootfs} is not a directory") from e
    try:
        try:
            fd = open_in_root(root_fd, path)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return None
            raise
    finally:
        os.close(root_fd)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > _MAX_DB_SIZE:
            raise InvalidArgument(f"{path} in the image is too large ({st.st_size} bytes)")
        # Re-open the resolved O_PATH fd for reading; /proc/self/fd does not re-walk the path.
        with open(f"/proc/self/fd/{fd}", "rb") as fh:
            return fh.read(_MAX_DB_SIZE).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _parse_int(text: str, signed: bool = False) -> int | None:
    """ASCII digits only (str.isdigit() also accepts characters int() cannot parse); with `signed`, a leading
    minus too, for the range check to refuse as Go's Atoi lets it through."""
    if signed and text.startswith("-") and _DIGITS.fullmatch(text[1:]):
        return int(text)
    return int(text) if _DIGITS.fullmatch(text) else None


def _parse_passwd(text: str | None) -> list[_PasswdEntry]:
    entries = []
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        uid, gid = _parse_int(fields[2]), _parse_int(fields[3])
        if uid is None or gid is None:
            continue
        home = fields[5] if len(fields) > 5 and fields[5] else "/"
        entries.append(_PasswdEntry(fields[0], uid, gid, home))
    return entries


def _parse_group(text: str | None) -> list[_GroupEntry]:
    entries = []
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) < 3 or line.startswith("#"):
            continue
        gid = _parse_int(fields[2])
        if gid is None:
            continue
        members = tuple(m for m in (fields[3].split(",") if len(fields) > 3 else []) if m)
        entries.append(_GroupEntry(fields[0], gid, members))
    return entries


def _check_id(value: int) -> int:
    if not 0 <= value <= _MAX_ID:
        raise InvalidArgument(f"uids and gids must be in range 0-{_MAX_ID}")  # libcontainer's words, for either
    return value


def _find_group(groups: list[_GroupEntry], arg: str, supplementary: bool = False) -> int:
    """A group by name first, then by number (Docker's order: a group may be named '100'). A supplementary
    one (`--group-add`) missing is told in libcontainer's other words, with a capital, as dockerd tells it."""
    for g in groups:
        if g.name == arg:
            return g.gid
    number = _parse_int(arg)
    if number is not None:
        return _check_id(number)
    raise UnknownName(f"{'Unable' if supplementary else 'unable'} to find group {arg}: no matching entries in group "
                      "file")


def resolve_user(rootfs: str, user: str | None, additional_groups: list[str | int] | None = None) -> ExecUser:
    """Docker's user resolution: "", "name", "uid", "name:group", "uid:gid" and mixes.

    A user name must exist in the image's passwd; a bare number need not (gid then 0).
    Supplementary groups come from /etc/group membership only when no group was named,
    then `additional_groups` (names or numbers) are appended; the primary gid is always one.
    """
    # libcontainer's reading: the first field a user, the second a group, any further ones ignored.
    fields = (user or "").split(":")
    user_arg, group_arg = fields[0], fields[1] if len(fields) > 1 else ""
    passwd = _parse_passwd(read_rootfs_file(rootfs, "/etc/passwd"))

    match: _PasswdEntry | None
    number = _parse_int(user_arg or "0", signed=True)
    if number is not None:
        # A number need not exist in passwd; when it does, that entry supplies gid and home.
        uid = _check_id(number)
        match = next((p for p in passwd if p.uid == uid), None)
    else:
        match = next((p for p in passwd if p.name == user_arg), None)
        if match is None:
            raise UnknownName(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = match.uid
    gid, home = (match.gid, match.home) if match is not None else (0, "/")

    groups = _parse_group(read_rootfs_file(rootfs, "/etc/group"))

    sgids: list[int] = []
    if group_arg:
        gid = _find_group(groups, group_arg)
    elif match is not None:
        sgids = [g.gid for g in groups if match.name in g.members]
    for extra in additional_groups or []:
        sgids.append(_check_id(extra) if isinstance(extra, int) else _find_group(groups, extra, True))
    # The primary gid leads the list: a later setgid() must not shed it and with it any
    # group-denying permissions (what Docker and containerd do since CVE-2022-36109).
    return ExecUser(uid=uid, gid=gid, additional_gids=list(dict.fromkeys([gid, *sgids])), home=home)
