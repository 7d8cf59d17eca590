"""Paths inside a build context, with Go's path rules (the builder's clients and Dockerfiles assume them).

- `clean` is Go's filepath.Clean: '//' → '/', '.' dropped, 'a/..' folded, '/..' → '/',
  '' → '.' (Python's normpath differs only on a leading '//').
- `glob_match` is Go's filepath.Match: '*' and '?' never match '/', '[...]' classes
  with '^' negation and ranges, '\\' escapes; a malformed pattern is an error even where
  the name would not reach the bad part (Go 1.16 on).
- `resolve` walks a context-relative path one component at a time, following symlinks
  as if the context were the root of the filesystem (an absolute target starts again
  at the context's root, as dockerd's scoped resolution does); a '..' that would climb
  above the root, from the path itself or from a link's target, is refused.
"""
from __future__ import annotations

import os
import posixpath
import re
import stat
from functools import lru_cache
from pathlib import Path

from engine.errors import InvalidArgument

_MAX_LINKS = 40  # Linux's MAXSYMLINKS


class OutsideContext(InvalidArgument):
    """A path, or a symlink on its way, leads above the build context's root."""


class BadPattern(InvalidArgument):
    def __init__(self, pattern: str) -> None:
        super().__init__(f"syntax error in pattern: {pattern!r}")


def clean(path: str) -> str:
    out = posixpath.normpath(path) if path else "."
    if out.startswith("//"):
        out = "/" + out.lstrip("/")
    return out


def relative(path: str) -> str:
    """A context-relative name: cleaned, leading '/' dropped ('.' for the root); may still start with '..'."""
    out = clean(path).lstrip("/")
    return out or "."


def escapes(rel: str) -> bool:
    return rel == ".." or rel.startswith("../")


def contains_wildcards(path: str) -> bool:
    """dockerd's test for a COPY source that is a pattern: '*', '?' or '[' not escaped by '\\'."""
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\":
            i += 1
        elif ch in "*?[":
            return True
        i += 1
    return False


def _class(pattern: str, i: int) -> tuple[str, int]:
    """Translate the class starting after '[' at `i`; returns (regex, index after ']')."""
    out = "["
    if i < len(pattern) and pattern[i] == "^":
        out += "^"
        i += 1
    ranges = 0
    while True:
        if i < len(pattern) and pattern[i] == "]" and ranges:
            return out + "]", i + 1
        lo, i = _class_char(pattern, i)
        out += re.escape(lo)
        if i < len(pattern) and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
            if hi < lo:
                raise BadPattern(pattern)
            out += "-" + re.escape(hi)
        ranges += 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern(pattern)
    return pattern[i], i + 1


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            cls, i = _class(pattern, i)
            out += cls
        elif ch == "\\":
            if i >= len(pattern):
                raise BadPattern(pattern)
            out += re.escape(pattern[i])
            i += 1
        else:
            out += re.escape(ch)
    return re.compile(out, re.DOTALL)


def glob_match(pattern: str, name: str) -> bool:
    return _glob_regex(pattern).fullmatch(name) is not None


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def resolve(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """Where `path` (relative to the context `root`) leads inside it; it need not exist.

    Raises OutsideContext for a '..' above the root on the way (naming `path`), and
    InvalidArgument for a symlink loop.
    """
    if "\0" in path:
        raise InvalidArgument(f"invalid path {path!r}: it contains a NUL byte")
    rel = relative(path)
    if escapes(rel):
        raise OutsideContext(f"forbidden path outside the build context: {path} ({rel})")
    pending = [] if rel == "." else rel.split("/")
    pending.reverse()
    current: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                raise OutsideContext(f"forbidden path outside the build context: {path} ({rel})")
            current.pop()
            continue
        here = root.joinpath(*current, part)
        st = _lstat(here)
        if st is None or not stat.S_ISLNK(st.st_mode) or (not pending and not follow_last):
            current.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise InvalidArgument(f"{path}: too many levels of symbolic links")
        target = os.readlink(here)
        if target.startswith("/"):
            current = []
        pending.extend(reversed([p for p in target.split("/") if p]))
    return root.joinpath(*current)
