""".dockerignore: Docker's pattern rules (moby/patternmatcher and its ignorefile reader).

Reading: a UTF-8 BOM is dropped, lines starting with '#' are comments, each line is
trimmed, a leading '!' makes an exception (re-include), and the rest is cleaned with
Go's filepath.Clean with one leading '/' dropped ("/a" and "a" are the same pattern).

Matching a slash-separated, context-relative path: the patterns are taken in order
and the last one that applies wins. A pattern applies to a path when it matches the
path itself or any of its parent directories, so excluding "docs" excludes everything
below it, and "!docs/keep.md" after it brings one file back. Within a pattern '*' and
'?' stay inside one path component, '[...]' is a class, '\\' escapes, and '**' spans
any number of components ("**/*.go", "a/**/b", "tmp/**"). Like patternmatcher, a
pattern is first classified: exact, prefix ("x**"), suffix ("**x": the path only has
to end with x), or a regular expression.

`excludes` is the question the docker CLI asks while it walks the context: besides
`matches`, a directory that is excluded hides everything below it, unless some
exception pattern starts with that directory's path (only then can an exception reach
inside it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from engine.builder.context.paths import BadPattern, clean, glob_match
from engine.errors import InvalidArgument

_BOM = "\ufeff"
_REGEX_SPECIAL = set(".+()|{}$")  # regexp metacharacters that mean nothing to filepath.Match
_CACHE_LIMIT = 4096


class _Kind(Enum):
    EXACT = 1
    PREFIX = 2
    SUFFIX = 3
    REGEXP = 4


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the '!'
    exclusion: bool
    kind: _Kind
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind is _Kind.EXACT:
            return path == self.text
        if self.kind is _Kind.PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind is _Kind.SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None


def _compile(text: str, exclusion: bool) -> Pattern:
    out = ""
    kind = _Kind.EXACT
    i = 0
    first = True
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "*" and i < len(text) and text[i] == "*":
            i += 1
            if i < len(text) and text[i] == "/":
                i += 1
            if i >= len(text):
                if kind is _Kind.EXACT:
                    kind = _Kind.PREFIX
                else:
                    out += ".*"
                    kind = _Kind.REGEXP
            else:
                out += "(.*/)?"
                kind = _Kind.REGEXP
            if first:
                kind = _Kind.SUFFIX
        elif ch == "*":
            out += "[^/]*"
            kind = _Kind.REGEXP
        elif ch == "?":
            out += "[^/]"
            kind = _Kind.REGEXP
        elif ch in _REGEX_SPECIAL:
            out += "\\" + ch
        elif ch == "\\":
            if i >= len(text):
                raise BadPattern(text)
            out += "\\" + text[i]
            i += 1
            kind = _Kind.REGEXP
        elif ch in "[]":
            out += ch
            kind = _Kind.REGEXP
        else:
            out += ch
        first = False
    regex = None
    if kind is _Kind.REGEXP:
        try:
            regex = re.compile(out)
        except re.error:
            raise BadPattern(text) from None
    return Pattern(text, exclusion, kind, regex)


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, as Docker's ignorefile reader gives them."""
    out = []
    for n, line in enumerate(text.splitlines()):
        if n == 0 and line.startswith(_BOM):
            line = line[len(_BOM):]
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        out.append("!" + line if invert else line)
    return out


class DockerIgnore:
    """A compiled .dockerignore; not thread-safe (it caches per-directory results)."""

    def __init__(self, lines: list[str]) -> None:
        patterns = []
        for line in lines:
            line = line.strip()
            if not line:
                continue
            line = clean(line)
            exclusion = line.startswith("!")
            if exclusion:
                if len(line) == 1:
                    raise InvalidArgument('illegal exclusion pattern: "!"')
                line = line[1:]
            glob_match(line, ".")  # filepath.Match's syntax check, as patternmatcher does
            patterns.append(_compile(line, exclusion))
        self.lines = lines
        self.patterns = tuple(patterns)
        self._above: dict[str, tuple[bool, ...]] = {}
        self._hidden: dict[str, bool] = {}

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        try:
            return cls(read_patterns(text))
        except InvalidArgument as e:
            raise InvalidArgument(f"error checking context: .dockerignore: {e.message}") from None

    def _prefix_hits(self, directory: str) -> tuple[bool, ...]:
        """Per pattern: does it match `directory` or one of its parents?"""
        hits = self._above.get(directory)
        if hits is None:
            up = directory.rpartition("/")[0]
            above = self._prefix_hits(up) if up else (False,) * len(self.patterns)
            hits = tuple(a or p.match(directory) for a, p in zip(above, self.patterns))
            if len(self._above) >= _CACHE_LIMIT:
                self._above.clear()
            self._above[directory] = hits
        return hits

    def matches(self, path: str) -> bool:
        """patternmatcher's MatchesOrParentMatches; the root itself is never excluded."""
        path = clean(path)
        if path == ".":
            return False
        parent = path.rpartition("/")[0]
        hits = self._prefix_hits(parent) if parent else None
        matched = False
        for i, pattern in enumerate(self.patterns):
            if pattern.exclusion != matched:
                continue
            if pattern.match(path) or (hits is not None and hits[i]):
                matched = not pattern.exclusion
        return matched

    def _dir_hidden(self, directory: str) -> bool:
        hidden = self._hidden.get(directory)
        if hidden is None:
            prefix = directory + "/"
            hidden = self.matches(directory) and not any(
                p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)
            if len(self._hidden) >= _CACHE_LIMIT:
                self._hidden.clear()
            self._hidden[directory] = hidden
        return hidden

    def excludes(self, path: str) -> bool:
        """Would the docker CLI leave `path` out of the context it sends?"""
        path = clean(path)
        parts = path.split("/")
        for i in range(1, len(parts)):
            if self._dir_hidden("/".join(parts[:i])):
                return True
        return self.matches(path)
