"""dockerd's words for registry refusals at login, and the registry a `serveraddress` names."""
from __future__ import annotations

import json

import pytest

from engine.images.auth import distribution_error, registry_host
from engine.images.push import push_platform, push_reference
from engine.errors import InvalidArgument


@pytest.mark.parametrize("status, body, words", [
    (401, json.dumps({"details": "incorrect username or password"}), "unauthorized: incorrect username or password"),
    (403, json.dumps({"details": "no"}), "denied: no"),
    (401, json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
     "unauthorized: authentication required"),
    (401, json.dumps({"errors": [{"code": "DENIED", "message": "a"}, {"code": "NAME_UNKNOWN", "message": "b"}]}),
     "errors:\ndenied: a\nname unknown: b\n"),
    (401, json.dumps({"error": "invalid credentials"}), "unauthorized: authentication required"),
    (401, "<html>", "unauthorized: authentication required"),
    (500, "", "received unexpected HTTP status: 500 Internal Server Error"),
])
def test_distribution_error(status: int, body: str, words: str) -> None:
    assert distribution_error(status, body) == words


@pytest.mark.parametrize("server, host", [
    ("", "docker.io"), ("https://index.docker.io/v1/", "docker.io"), ("registry-1.docker.io", "docker.io"),
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("http://Registry.Example.com:443/v2/", "registry.example.com:443"),
])
def test_registry_host(server: str, host: str) -> None:
    assert registry_host(server) == host


def test_push_reference() -> None:
    ref, one = push_reference("host:5000/a/b", "v1")
    assert one and str(ref) == "host:5000/a/b:v1"
    # API 1.50: a tag in the name is ignored, the `tag` parameter says which (none: all of them).
    ref, one = push_reference("host:5000/a/b:v2", "")
    assert not one and ref.name == "host:5000/a/b"
    assert str(push_reference("host:5000/a/b:v2", "v1")[0]) == "host:5000/a/b:v1"
    assert push_reference("busybox", "")[0].name == "docker.io/library/busybox"
    with pytest.raises(InvalidArgument):
        push_reference("busybox@sha256:" + "a" * 64, "")


def test_push_platform() -> None:
    assert push_platform("") is None
    assert str(push_platform('{"os": "linux", "architecture": "arm", "variant": "v7"}')) == "linux/arm/v7"
    for bad in ("linux/amd64", '{"os": "linux"}', "{"):
        with pytest.raises(InvalidArgument):
            push_platform(bad)
