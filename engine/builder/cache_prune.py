"""What a `docker builder prune` drops: BuildKit's filters and space options, as dockerd hands them on.

dockerd passes the cache fields (`id`, `parent`, `type`, `description`, `inuse`, `shared`, `private`) to BuildKit
as one-value filters (`id` matches the records whose ID holds it), `until` (or its older name `unused-for`) as an age, and the space options as bounds on
what stays. The cache records here carry no labels: `label=` matches none of them and `label!=` all of them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidArgument
from engine.images.filters import parse_until

_KEYS = {"id": "ID", "parent": "Parents", "type": "Type", "description": "Description", "inuse": "InUse",
         "shared": "Shared"}
_FIELDS = (*_KEYS, "private")
_ACCEPTED = {*_FIELDS, "until", "unused-for", "label", "label!"}


@dataclass(frozen=True)
class PruneRule:
    """`fields` are the one-value field filters; `keep_since` keeps what was used since then."""
    everything: bool = False
    keep_since: float | None = None
    fields: dict[str, str | None] = field(default_factory=dict)
    labelled: bool = False  # a `label=` filter: no record has a label, so none is chosen
    # The space options: keep at most `cap` bytes (0: no cap), never go below `floor`, free the disk to `min_free`.
    cap: int = 0
    floor: int = 0
    min_free: int = 0

    def chooses(self, record: Mapping[str, Any]) -> bool:
        """Whether the filters pick `record` (a `system df` BuildCache entry)."""
        if self.labelled:
            return False
        for name, wanted in self.fields.items():
            value = not record.get("Shared") if name == "private" else record.get(_KEYS[name])
            texts = [_text(v) for v in value] if isinstance(value, list) else [_text(value)]
            if wanted is None:
                found = any(t not in ("", "false") for t in texts)
            elif name == "id":
                # BuildKit reads it as a pattern; IDs and their prefixes, what users give, are matched as text
                # (a pattern would be a user's regular expression run by a backtracking engine).
                found = any(wanted in t for t in texts)
            else:
                found = wanted in texts
            if not found:
                return False
        return True

    def target(self, total: int, free: int) -> int | None:
        """The bytes the cache may keep, or None when no space option bounds it."""
        if not (self.cap or self.min_free):
            return None
        keep = self.cap or total
        if (excess := self.min_free - free) > 0:
            keep = min(keep, total - excess)
        return max(keep, 0)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parse(filters: dict[str, list[str]], space: Mapping[str, int | None], everything: bool) -> PruneRule:
    unknown = set(filters) - _ACCEPTED
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    if filters.get("until") and filters.get("unused-for"):
        raise InvalidArgument('conflicting filters: "until" and "unused-for"')
    ages = [*filters.get("until", []), *filters.get("unused-for", [])]
    fields: dict[str, str | None] = {}
    for name in _FIELDS:
        if name in filters:
            values = filters[name]
            if len(values) > 1:
                raise InvalidArgument("filters expect only one value")
            fields[name] = values[0] if values else None
    if len(ages) > 1:
        raise InvalidArgument("filters expect only one value")
    cap = min((v for v in (space.get("keep-storage"), space.get("max-used-space")) if v), default=0)
    for name, value in space.items():
        if value is not None and value < 0:
            raise InvalidArgument(f"invalid value for {name}: it cannot be negative")
    return PruneRule(everything=everything, keep_since=parse_until(ages[0]) if ages else None, fields=fields,
                     labelled=bool(filters.get("label")), cap=cap, floor=space.get("reserved-space") or 0,
                     min_free=space.get("min-free-space") or 0)
