"""Target selection, the stages a target needs and their order, unconsumed build-args."""
from __future__ import annotations

import pytest

from engine.builder.dockerfile import (
    DockerfileError, global_scope, parse_dockerfile, plan, unused_build_args, unused_build_args_warning,
)

MULTI = """\
ARG BASE=alpine
FROM $BASE AS deps
RUN make deps
FROM golang AS tools
FROM deps AS build
ARG VERSION
COPY --from=tools /go/bin/x /x
RUN --mount=type=cache,target=/c,from=cachesrc make
FROM scratch AS unused
COPY --from=0 / /
FROM busybox
COPY --from=build /out /out
COPY --from=registry.example/img:1 /etc/x /x
"""


def test_default_target_is_last_and_unused_stages_are_skipped() -> None:
    df = parse_dockerfile(MULTI)
    result = plan(df, "", global_scope(df.global_args, {}, {}))
    assert result.target.index == 4
    assert result.order == [0, 1, 2, 4]
    assert result.deps == {0: frozenset(), 1: frozenset(), 2: frozenset({0, 1}), 4: frozenset({2})}
    assert result.base == {0: "alpine", 1: "golang", 2: "deps", 4: "busybox"}
    assert result.images[2] == frozenset({"cachesrc"})
    assert result.images[4] == frozenset({"busybox", "registry.example/img:1"})
    assert result.declared == {"BASE", "VERSION"}


def test_named_target_and_index_reference() -> None:
    df = parse_dockerfile(MULTI)
    result = plan(df, "UNUSED", {"BASE": "alpine"})
    assert result.order == [0, 3] and result.deps[3] == frozenset({0})
    with pytest.raises(DockerfileError) as err:
        plan(df, "nope", {})
    assert err.value.message == 'target stage "nope" could not be found'


def test_platform_expanded_with_the_global_scope() -> None:
    df = parse_dockerfile("FROM --platform=$BUILDPLATFORM a AS b\nFROM b\n")
    result = plan(df, "", global_scope(df.global_args, {}, {"BUILDPLATFORM": "linux/amd64"}))
    assert result.platform == {0: "linux/amd64", 1: ""}


def test_from_expressions_use_the_global_scope() -> None:
    df = parse_dockerfile("ARG SRC=one\nFROM a AS one\nFROM b AS two\nFROM c\nCOPY --from=$SRC / /\n")
    assert plan(df, "", global_scope(df.global_args, {"SRC": "two"}, {})).order == [1, 2]
    assert plan(df, "", global_scope(df.global_args, {}, {})).order == [0, 2]


def test_cycles_and_bad_indexes() -> None:
    df = parse_dockerfile("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n")
    with pytest.raises(DockerfileError, match="circular dependency detected on stage"):
        plan(df, "", {})
    df = parse_dockerfile("FROM a\nCOPY --from=0 / /\n")
    with pytest.raises(DockerfileError, match="line 2: circular dependency detected on stage: 0"):
        plan(df, "", {})
    df = parse_dockerfile("FROM a\nCOPY --from=5 / /\n")
    with pytest.raises(DockerfileError, match="stage index out of range"):
        plan(df, "", {})


def test_from_itself_is_the_image() -> None:
    df = parse_dockerfile("FROM alpine AS alpine\nRUN x\n")
    result = plan(df, "", {})
    assert result.deps == {0: frozenset()} and result.images[0] == frozenset({"alpine"})


def test_unused_build_args_warning() -> None:
    df = parse_dockerfile(MULTI)
    result = plan(df, "", global_scope(df.global_args, {}, {}))
    args = {"VERSION": "1", "zz": "2", "HTTP_PROXY": "p", "aa": None, "BASE": "x"}
    unused = unused_build_args(args, result.declared)
    assert unused == ["aa", "zz"]
    assert unused_build_args_warning(unused) == "[Warning] One or more build-args [aa zz] were not consumed\n"
    assert unused_build_args_warning([]) is None
