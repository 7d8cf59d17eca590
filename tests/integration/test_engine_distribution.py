"""GET /distribution/{name}/json against the fixture registry, through the Docker SDK and curl.

Expected answers as dockerd 20.10 gave them for the same registry on this machine (schema2 platforms from
the config, index platforms from the entries, "manifest unknown" for a missing repository or tag), plus the
platform of an OCI manifest, which dockerd 20.10 leaves null.
"""
from __future__ import annotations

import json
import urllib.parse

import docker
import pytest

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers

AMD64 = {"architecture": "amd64", "os": "linux"}


def _get(engine, name: str) -> tuple[int, dict]:
    status, ctype, body = curl(engine, "GET", f"/v1.41/distribution/{urllib.parse.quote(name, safe='/:@')}/json")
    assert ctype == "application/json"
    return status, json.loads(body)


@pytest.mark.parametrize("tag, media_type, platforms", [
    ("busybox:docker", "application/vnd.docker.distribution.manifest.v2+json", [AMD64]),
    ("busybox:latest", "application/vnd.oci.image.manifest.v1+json", [AMD64]),
    ("multi:latest", "application/vnd.oci.image.index.v1+json",
     [AMD64, {"architecture": "arm64", "os": "linux", "variant": "v8"}]),
])
def test_descriptor_and_platforms_of_each_manifest_kind(engine, registry, images, tag, media_type, platforms):
    seeded = images[f"library/{tag}"]
    status, body = _get(engine, f"{registry.host}/library/{tag}")
    assert status == 200, body
    assert body == {"Descriptor": {"mediaType": media_type, "digest": seeded.digest, "size": seeded.size},
                    "Platforms": platforms}
    # By digest, the same answer.
    status, by_digest = _get(engine, f"{registry.host}/library/{tag.split(':')[0]}@{seeded.digest}")
    assert (status, by_digest) == (200, body)


def test_sdk_registry_data_reads_without_pulling(engine, registry, images, sdk):
    before = ok(engine, "images", "-q", "--no-trunc")
    data = sdk.images.get_registry_data(f"{registry.host}/library/multi:latest")
    assert data.id == images["library/multi:latest"].digest
    assert data.has_platform("linux/arm64/v8") and not data.has_platform("windows/amd64")
    # Docker Hub names go through the configured mirror, as a pull's do.
    hub = sdk.images.get_registry_data("busybox")
    assert hub.id == images["library/busybox:latest"].digest
    assert ok(engine, "images", "-q", "--no-trunc") == before


def test_errors_in_dockerds_words(engine, registry):
    for name in (f"{registry.host}/library/busybox:nosuchtag", f"{registry.host}/library/nosuchrepo:latest"):
        assert _get(engine, name) == (404, {"message": "manifest unknown: manifest unknown"})
    # Docker Hub denies what it does not have (here the mirror lacks it and the hub is out of reach).
    status, body = _get(engine, "nosuchimage-pyengine")
    assert status == 401 and body["message"].startswith("errors:\ndenied: requested access to the resource is denied")
    status, body = _get(engine, "Bad:Name")
    assert status == 400 and body["message"].startswith("invalid reference format")
    assert _get(engine, "a" * 64) == (400, {"message": "no manifest found for full image ID"})


def test_x_registry_auth_is_honoured(engine, basic_registry, images):
    name = f"{basic_registry.host}/library/busybox:latest"
    status, body = _get(engine, name)
    assert status == 401, body
    username, password = basic_registry.credentials
    client = docker.DockerClient(base_url=engine.host)
    try:
        data = client.images.get_registry_data(name, auth_config={"username": username, "password": password})
    finally:
        client.close()
    assert data.id == images["library/busybox:latest"].digest
    assert data.attrs["Platforms"] == [AMD64]
