"""dockerd's words for registry refusals at login, and the registry a `serveraddress` names."""
from __future__ import annotations

import json

import pytest

from engine.images.auth import distribution_error, registry_host
from engine.images.push import push_reference
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
    assert push_reference("host:5000/a/b", "v1") == (push_reference("host:5000/a/b:v1", "")[0], True)
    ref, one = push_reference("host:5000/a/b", "")
    assert not one and ref.name == "host:5000/a/b"
    assert push_reference("busybox", "")[0].name == "docker.io/library/busybox"
    with pytest.raises(InvalidArgument):
        push_reference("busybox@sha256:" + "a" * 64, "")
