"""`docker builder prune`'s filters and space options (engine/builder/cache_prune.py), as dockerd hands them
to BuildKit: the cache fields as one-value filters, `until`/`unused-for` as an age, the space options as bounds."""
from __future__ import annotations

import pytest

from engine.builder.cache_prune import parse
from engine.errors import InvalidArgument

RECORD = {"ID": "abcdef0123456789abcdef012", "Parents": None, "Type": "regular", "Description": "RUN true",
          "InUse": False, "Shared": True, "Size": 10}
NO_SPACE: dict[str, int | None] = {}


@pytest.mark.parametrize(("filters", "chosen"), [
    ({}, True), ({"type": ["regular"]}, True), ({"type": ["exec.cachemount"]}, False),
    ({"inuse": ["false"]}, True), ({"inuse": []}, False), ({"shared": []}, True), ({"private": []}, False),
    ({"private": ["false"]}, True), ({"id": ["abcd"]}, True), ({"id": ["zz"]}, False), ({"id": ["(.*)*x"]}, False),
    ({"description": ["RUN true"]}, True), ({"parent": ["x"]}, False),
    ({"label": ["a=1"]}, False), ({"label!": ["a=1"]}, True),
])
def test_filters_choose_as_buildkit(filters: dict[str, list[str]], chosen: bool) -> None:
    assert parse(filters, NO_SPACE, everything=True).chooses(RECORD) is chosen


@pytest.mark.parametrize(("filters", "words"), [
    ({"colour": ["x"]}, "invalid filter 'colour'"),
    ({"until": ["1h"], "unused-for": ["2h"]}, 'conflicting filters: "until" and "unused-for"'),
    ({"type": ["a", "b"]}, "filters expect only one value"),
])
def test_bad_filters_are_refused(filters: dict[str, list[str]], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        parse(filters, NO_SPACE, everything=False)


def test_unused_for_is_until() -> None:
    assert parse({"unused-for": ["1h"]}, NO_SPACE, everything=False).keep_since is not None


def test_space_options_bound_what_stays() -> None:
    assert parse({}, NO_SPACE, everything=False).target(total=100, free=0) is None
    assert parse({}, {"keep-storage": 40}, everything=False).target(total=100, free=0) == 40
    assert parse({}, {"keep-storage": 40, "max-used-space": 30}, everything=False).target(100, 0) == 30
    # 25 bytes free, 50 wanted: 25 more must go.
    assert parse({}, {"min-free-space": 50}, everything=False).target(total=100, free=25) == 75
    assert parse({}, {"reserved-space": 60}, everything=False).floor == 60
    with pytest.raises(InvalidArgument, match="keep-storage"):
        parse({}, {"keep-storage": -1}, everything=False)
