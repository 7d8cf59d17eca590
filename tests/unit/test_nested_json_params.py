"""JSON that clients send outside a body (query parameters, auth headers) nested deeper than the parser recurses:
refused or ignored as any unreadable value is, never an internal error."""
from __future__ import annotations

import base64

import pytest
from multidict import MultiDict

from engine.api.routers.image_archives import _platform
from engine.builder.options import parse_options, registry_auths
from engine.errors import InvalidArgument
from engine.images.pull import RegistryAuth
from engine.images.push import push_platform

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_HEADER = base64.urlsafe_b64encode(DEEP.encode()).decode()


def test_deep_platforms_are_refused() -> None:
    for parse in (push_platform, _platform):
        with pytest.raises(InvalidArgument, match="failed to parse platform"):
            parse(DEEP)


def test_deep_build_parameters_are_refused() -> None:
    for name in ("buildargs", "labels"):
        with pytest.raises(InvalidArgument, match=f"invalid {name}"):
            parse_options(MultiDict({name: DEEP}))


def test_deep_auth_headers_are_no_credentials() -> None:
    assert RegistryAuth.from_header(DEEP_HEADER) is None
    assert registry_auths(DEEP_HEADER) == {}
