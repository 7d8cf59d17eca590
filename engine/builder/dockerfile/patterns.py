"""Shell patterns in `${VAR#p}`, `${VAR%p}`, `${VAR/p/r}`, as BuildKit's lexer reads them: `*` any run
of characters, `?` one character, `\\*` `\\?` `\\\\` literal, `\\}` and `\\/` the character itself; any other
escape is an error; no bracket expressions.
"""
from __future__ import annotations

import re

from engine.builder.dockerfile.errors import SubstitutionError


def compile_pattern(pattern: str, greedy: bool = True) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            follower = pattern[i] if i < len(pattern) else ""
            if follower in ("}", "/"):
                continue
            if follower not in ("*", "?", "\\"):
                raise SubstitutionError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{follower}'")
            out.append(re.escape(follower))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def trim_prefix(value: str, pattern: str, longest: bool) -> str:
    compiled = compile_pattern(pattern)
    cuts = range(len(value), -1, -1) if longest else range(len(value) + 1)
    for cut in cuts:
        if compiled.fullmatch(value[:cut]):
            return value[cut:]
    return value


def trim_suffix(value: str, pattern: str, longest: bool) -> str:
    compiled = compile_pattern(pattern)
    cuts = range(len(value) + 1) if longest else range(len(value), -1, -1)
    for cut in cuts:
        if compiled.fullmatch(value[cut:]):
            return value[:cut]
    return value


def replace(value: str, pattern: str, replacement: str, every: bool) -> str:
    compiled = compile_pattern(pattern)
    return compiled.sub(lambda _: replacement, value, count=0 if every else 1)
