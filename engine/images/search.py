"""GET /images/search: a registry index's search, with dockerd's limit, filters and words.

The runtime asks the index (Docker Hub's, or the registry a term names by its host); the filters
are applied here, as dockerd applies them to the index's answer. Registries without the v1
search API (distribution, the usual private registry) answer 404, which dockerd reports as a
500 "Unexpected status code 404": kept, since clients match those words, with the reason added.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import Internal, InvalidArgument
from engine.images.pull import RegistryAuth
from engine.images.store import Registries
from runtime.client import NotFound as NoSearchAPI
from runtime.client import RuntimeAPI

DEFAULT_LIMIT = 25
_FILTERS = ("is-automated", "is-official", "stars")


def _boolean(key: str, values: list[str]) -> bool:
    # As Go's filters.GetBoolOrDefault: only 0/false and 1/true, never both.
    no, yes = bool({"0", "false"} & set(values)), bool({"1", "true"} & set(values))
    if no == yes:
        raise InvalidArgument(f"Invalid filter '{key}=[{' '.join(values)}]'")
    return yes


@dataclass(frozen=True)
class SearchFilter:
    is_automated: bool | None = None
    is_official: bool | None = None
    min_stars: int | None = None

    @classmethod
    def parse(cls, f: dict[str, list[str]]) -> SearchFilter:
        unknown = sorted(set(f) - set(_FILTERS))
        if unknown:
            raise InvalidArgument(f"Invalid filter '{unknown[0]}'")
        stars = None
        for value in f.get("stars", []):
            try:
                stars = max(stars or 0, int(value))
            except ValueError:
                raise InvalidArgument(f"Invalid filter 'stars={value}'") from None
        return cls(is_automated=_boolean("is-automated", f["is-automated"]) if "is-automated" in f else None,
                   is_official=_boolean("is-official", f["is-official"]) if "is-official" in f else None,
                   min_stars=stars)

    def __call__(self, result: dict[str, Any]) -> bool:
        return ((self.is_automated is None or bool(result.get("is_automated")) == self.is_automated)
                and (self.is_official is None or bool(result.get("is_official")) == self.is_official)
                and (self.min_stars is None or int(result.get("star_count") or 0) >= self.min_stars))


def limit_of(raw: str | None) -> int:
    if not raw:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidArgument(f'strconv.Atoi: parsing "{raw}": invalid syntax') from None
    if limit == 0:  # dockerd cannot tell 0 from absent
        return DEFAULT_LIMIT
    if not 1 <= limit <= 100:
        raise InvalidArgument(f"Limit {limit} is outside the range of [1, 100]")
    return limit


async def search(runtime: RuntimeAPI, registries: Registries, term: str, limit: int, wanted: SearchFilter,
                 auth: RegistryAuth | None) -> list[dict[str, Any]]:
    try:
        found = await runtime.search(term, limit, insecure=registries.insecure,
                                     credentials=auth.credentials() if auth else None)
    except NoSearchAPI as e:
        raise Internal(f"Unexpected status code 404 ({e.message})") from None
    return [{"star_count": int(r.get("star_count") or 0), "is_official": bool(r.get("is_official")),
             "name": str(r.get("name") or ""), "is_automated": bool(r.get("is_automated")),
             "description": str(r.get("description") or "")}
            for r in found.results if wanted(r)]
