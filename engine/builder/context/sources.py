"""COPY/ADD sources found in the build context, with dockerd's legacy builder's rules and words.

A source is taken relative to the context's root (one leading '/' or './' dropped).
With wildcards ('*', '?', '[' not escaped), every path of the context, walked in
lexical order without following symlinks, that Go's filepath.Match accepts is a
source, each resolved as if named on its own. Otherwise the path is resolved with
its symlinks followed inside the context (a symlink source copies what it points
to, under its own name). Nothing at all → "no source files were specified".

Where dockerd folds a '..' above the root back into it, this builder refuses it
("forbidden path outside the build context"), from the source itself or from a
symlink on its way: a Dockerfile asking for that is mistaken, and saying so beats
copying some other file.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.builder.context.paths import (
    BadPattern,
    OutsideContext,
    contains_wildcards,
    escapes,
    glob_match,
    relative,
    resolve,
)
from engine.errors import InvalidArgument


@dataclass(frozen=True)
class ContextSource:
    """One source: `rel` as the Dockerfile named it (or as the pattern matched it), `path` where it leads."""

    rel: str
    path: Path

    @property
    def name(self) -> str:
        """The name a copy into a directory gets (a symlink's own name, not its target's)."""
        return self.rel.rpartition("/")[2]


def _trim(source: str) -> str:
    source = source.removeprefix("/")
    return source.removeprefix("./")


def _listing(directory: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: os.fsencode(e.name))
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    return iter(entries)


def _walk(root: Path, depth: int | None) -> Iterator[str]:
    """Context-relative paths in Go's filepath.Walk order (a directory, then what is in it, by name),
    not going below `depth` components."""
    stack = [(_listing(root), "")]
    while stack:
        entries, prefix = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        rel = prefix + entry.name
        yield rel
        if entry.is_dir(follow_symlinks=False) and (depth is None or rel.count("/") + 1 < depth):
            stack.append((_listing(Path(entry.path)), rel + "/"))


def _single(root: Path, source: str, instruction: str) -> ContextSource:
    rel = relative(source)
    try:
        path = resolve(root, rel)
    except OutsideContext:
        raise InvalidArgument(f"{instruction} failed: forbidden path outside the build context: "
                              f"{source} ({rel})") from None
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidArgument(f"{instruction} failed: file not found in build context or excluded by "
                              f".dockerignore: stat {source}: file does not exist") from None
    return ContextSource(rel, path)


def matching(root: Path, pattern: str, instruction: str = "COPY") -> list[str]:
    """The paths under `root` (relative, in Go's filepath.Walk order) that the wildcard `pattern` matches."""
    try:
        glob_match(pattern, ".")
    except BadPattern as e:
        raise InvalidArgument(f"{instruction} failed: {e.message}") from None
    depth = None if "[" in pattern else pattern.count("/") + 1  # a class may match '/'
    return [rel for rel in _walk(root, depth) if glob_match(pattern, rel)]


def resolve_sources(context_dir: Path, sources: Sequence[str], *, allow_wildcards: bool = True,
                    instruction: str = "COPY") -> list[ContextSource]:
    """The sources of one COPY/ADD (`instruction` names it in errors), in dockerd's order."""
    out: list[ContextSource] = []
    for original in sources:
        source = _trim(original)
        if escapes(relative(source)):
            raise InvalidArgument(f"{instruction} failed: forbidden path outside the build context: "
                                  f"{original} ({relative(source)})")
        if not (allow_wildcards and contains_wildcards(source)):
            out.append(_single(context_dir, source, instruction))
            continue
        for rel in matching(context_dir, source, instruction):
            out.append(_single(context_dir, rel, instruction))
    if not out:
        raise InvalidArgument(f"{instruction} failed: no source files were specified")
    return out

