"""The documents of a child image: rootfs, history and manifest families as dockerd writes them."""
from __future__ import annotations

import hashlib
import json

from engine.images.compose import (
    DOCKER_MANIFEST,
    EMPTY_TAR_DIFF_ID,
    OCI_MANIFEST,
    Blob,
    NewLayer,
    child_config,
    config_blob,
    family_of,
    manifest,
)

PARENT = {
    "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
    "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "ADD file"}],
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
}
LAYER = NewLayer({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "b" * 64,
                  "size": 10}, "sha256:" + "c" * 64)


def test_a_layer_is_appended_and_its_step_recorded() -> None:
    doc = child_config(PARENT, {"Cmd": ["true"]}, layer=LAYER, created="2026-12-05T00:00:00Z",
                       created_by="/bin/sh -c touch x", author="me", comment="c", container="abc",
                       container_config={"Cmd": ["/bin/sh", "-c", "touch x"]})
    assert doc["rootfs"]["diff_ids"] == ["sha256:" + "a" * 64, LAYER.diff_id]
    assert doc["history"][-1] == {"created": "2026-12-05T00:00:00Z", "created_by": "/bin/sh -c touch x",
                                  "author": "me", "comment": "c"}
    assert doc["config"] == {"Cmd": ["true"]} and doc["container"] == "abc" and doc["author"] == "me"
    assert PARENT["rootfs"]["diff_ids"] == ["sha256:" + "a" * 64], "the parent's document is not changed"


def test_an_empty_diff_adds_no_layer_and_marks_the_history_entry() -> None:
    empty = NewLayer(LAYER.descriptor, EMPTY_TAR_DIFF_ID)
    for layer in (None, empty):
        doc = child_config(PARENT, {}, layer=layer, created="2026-12-05T00:00:00Z", created_by="ENV a=b")
        assert doc["rootfs"]["diff_ids"] == PARENT["rootfs"]["diff_ids"]
        assert doc["history"][-1]["empty_layer"] is True
    assert hashlib.sha256(b"\0" * 1024).hexdigest() == EMPTY_TAR_DIFF_ID.removeprefix("sha256:")


def test_scratch_images_take_the_platform_given_or_the_hosts() -> None:
    doc = child_config(None, {}, layer=LAYER, created="t", platform={"os": "linux", "architecture": "arm64",
                                                                       "variant": "v8"})
    assert (doc["os"], doc["architecture"], doc["variant"]) == ("linux", "arm64", "v8")
    assert doc["rootfs"]["diff_ids"] == [LAYER.diff_id] and len(doc["history"]) == 1


def test_manifests_name_layers_in_their_family_and_digest_their_own_bytes() -> None:
    config = config_blob(child_config(PARENT, {}, layer=LAYER, created="t"))
    docker = manifest(config, [LAYER.descriptor])
    body = json.loads(docker.data)
    assert body["mediaType"] == DOCKER_MANIFEST and body["config"] == config.descriptor
    assert body["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert docker.digest == "sha256:" + hashlib.sha256(docker.data).hexdigest()
    oci = json.loads(manifest(config, [{**LAYER.descriptor, "mediaType":
                                        "application/vnd.docker.image.rootfs.diff.tar.gzip"}], OCI_MANIFEST).data)
    assert oci["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert family_of(OCI_MANIFEST) == OCI_MANIFEST and family_of(None) == DOCKER_MANIFEST
    assert Blob.of("x", {"b": 1, "a": 2}).data == b'{"b":1,"a":2}'
