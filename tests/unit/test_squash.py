"""The config of a squashed build (engine/builder/squash.py), as dockerd's SquashImage writes it."""
from __future__ import annotations

from engine.builder.squash import squashed_config
from engine.images.compose import EMPTY_TAR_DIFF_ID, NewLayer
from engine.images.model import LocalImage


def image(id: str, diff_ids: list[str], history: list[dict[str, object]]) -> LocalImage:
    return LocalImage(id=id, config={"rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history,
                                     "config": {"Env": ["A=1"]}}, manifest_digest="", layers=[])


BASE = image("sha256:base", ["sha256:l1"], [{"created_by": "base"}])
BUILT = image("sha256:built", ["sha256:l1", "sha256:l2", "sha256:l3"],
              [{"created_by": "base"}, {"created_by": "RUN a"}, {"created_by": "RUN b"}, {"created_by": "ENV x"}])


def test_the_layers_above_the_base_become_one() -> None:
    doc = squashed_config(BUILT, BASE, NewLayer({}, "sha256:new"), "T")
    assert doc["rootfs"]["diff_ids"] == ["sha256:l1", "sha256:new"]
    assert doc["history"] == [{"created_by": "base"}, {"created_by": "RUN a", "empty_layer": True},
                              {"created_by": "RUN b", "empty_layer": True}, {"created_by": "ENV x", "empty_layer": True},
                              {"created": "T", "comment": "merge sha256:built to sha256:base"}]
    assert doc["created"] == "T" and doc["config"] == {"Env": ["A=1"]}
    assert BUILT.config["rootfs"]["diff_ids"][-1] == "sha256:l3"  # the built image's own config is untouched


def test_from_scratch_and_without_changes() -> None:
    doc = squashed_config(BUILT, None, NewLayer({}, "sha256:all"), "T")
    assert doc["rootfs"]["diff_ids"] == ["sha256:all"]
    assert doc["history"][-1] == {"created": "T", "comment": "create new from sha256:built"}
    unchanged = squashed_config(BUILT, BASE, NewLayer({}, EMPTY_TAR_DIFF_ID), "T")
    assert unchanged["rootfs"]["diff_ids"] == ["sha256:l1"] and unchanged["history"][-1]["empty_layer"] is True
