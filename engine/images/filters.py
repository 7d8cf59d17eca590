"""The `filters` of GET /images/json and POST /images/prune."""
from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from engine.errors import InvalidArgument
from engine.images.model import LocalImage, Record
from runtime.client.reference import Reference

_LIST_KEYS = {"dangling", "reference", "label", "before", "since", "until"}
_PRUNE_KEYS = {"dangling", "until", "label", "label!"}
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def _check_keys(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")


def _bool(filters: dict[str, list[str]], key: str) -> bool | None:
    values = filters.get(key)
    if not values:
        return None
    value = values[-1].strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{key}={values[-1]}'")


def _list_dangling(values: list[str]) -> bool | None:
    """The list's dangling= takes `true` or `false` as written (dockerd's ExactMatch; a prune's reads more)."""
    if not values:
        return None
    if "true" in values:
        return True
    if "false" in values:
        return False
    raise InvalidArgument(f"invalid filter 'dangling=[{' '.join(values)}]'")


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """Go's path.Match: `*` and `?` stop at '/', `[...]` classes negate with `^`."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise InvalidArgument(f"invalid reference filter {pattern!r}: unterminated character class")
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body[:1] in "^!" and body else body).replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as e:  # a class Go rejects too: "[z-a]", "[^]"
        raise InvalidArgument(f"invalid reference filter {pattern!r}: {e}") from None


def reference_matches(pattern: str, record: Record) -> bool:
    """A name matches as `busybox:latest` (or `busybox@sha256:…`) or as the bare `busybox`."""
    if record.ref is None:
        return False
    regex = _glob(pattern)
    return bool(regex.fullmatch(record.display) or regex.fullmatch(record.ref.familiar_name))


def _matching_forms(patterns: list[str], record: Record) -> list[Record]:
    """The forms of a name the patterns select, dockerd's way: its tag and the repository digest it gives
    are two names, each shown only when matched (`busybox:latest` selects no digest, `busybox@sha256:…`
    no tag, the bare `busybox` both)."""
    if record.ref is None:
        return []
    digest_form = None
    if record.gives_digest and record.is_tag:
        digest_form = replace(record, ref=Reference(record.ref.domain, record.ref.path, None, record.digest))
    tag_hit = any(reference_matches(p, record) for p in patterns)
    if digest_form is None:
        return [record] if tag_hit else []
    digest_hit = any(reference_matches(p, digest_form) for p in patterns)
    if tag_hit and digest_hit:
        return [record]
    if tag_hit:
        return [replace(record, digest_removed=True)]
    return [digest_form] if digest_hit else []


def _labels_match(image: LocalImage, wanted: list[str]) -> bool:
    labels = image.labels
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _labels_absent(image: LocalImage, unwanted: list[str]) -> bool:
    labels = image.labels
    for item in unwanted:
        key, eq, value = item.partition("=")
        if key in labels and (not eq or labels[key] == value):
            return False
    return True


def list_selector(filters: dict[str, list[str]],
                  created_of: Callable[[str], float]) -> Callable[[LocalImage], list[Record] | None]:
    """Per image: the names to show (a `reference` filter hides the others), or None to leave it out.

    `created_of` resolves before/since to the named image's creation time.
    """
    _check_keys(filters, _LIST_KEYS)
    dangling = _list_dangling(filters.get("dangling") or [])
    patterns = filters.get("reference") or []
    labels = filters.get("label") or []
    before = min((created_of(v) for v in filters.get("before") or []), default=None)
    since = max((created_of(v) for v in filters.get("since") or []), default=None)
    until = min((parse_until(v) for v in filters.get("until") or []), default=None)

    def select(image: LocalImage) -> list[Record] | None:
        if dangling is not None and image.dangling != dangling:
            return None
        if labels and not _labels_match(image, labels):
            return None
        if before is not None and image.created_at >= before:
            return None
        if since is not None and image.created_at <= since:
            return None
        if until is not None and image.created_at >= until:
            return None
        names = image.named
        if patterns:
            names = [form for r in names for form in _matching_forms(patterns, r)]
            if not names:
                return None
        return names

    return select


def parse_until(value: str, now: float | None = None) -> float:
    """A unix time, an RFC 3339 time or date, or a Go duration back from now."""
    now = time.time() if now is None else now
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text and _DURATION.sub("", text) == "" and _DURATION.match(text):
        return now - sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION.findall(text))
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"') from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def prune_selector(filters: dict[str, list[str]]) -> Callable[[LocalImage], bool]:
    """Untagged images only unless dangling=false; then until/label narrow it down."""
    _check_keys(filters, _PRUNE_KEYS)
    dangling_only = _bool(filters, "dangling") is not False
    until = min((parse_until(v) for v in filters.get("until") or []), default=None)
    labels = filters.get("label") or []
    not_labels = filters.get("label!") or []

    def select(image: LocalImage) -> bool:
        if dangling_only and not image.dangling:
            return False
        if until is not None and image.created >= until:
            return False
        return _labels_match(image, labels) and _labels_absent(image, not_labels)

    return select
