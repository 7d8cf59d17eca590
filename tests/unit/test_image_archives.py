"""Rules of image archives without a daemon: names inside an archive resolve in scope; save picks images as dockerd."""
from __future__ import annotations

import pytest

from engine.errors import NotFound
from engine.images.archive import select
from engine.images.model import DANGLING_PREFIX, LocalImage, Record
from runtime.errors import InvalidArgument
from runtime.reference import parse
from runtime.transfer.archive_read import Archive, Blob
from runtime.transfer.importer import _entry_names, _tag
from runtime.oci import Descriptor

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _archive(links: dict[str, str]) -> Archive:
    blob = Blob(name="x/layer.tar", digest=A, size=1, compression="none", diff_id=A)
    return Archive(blobs={"x/layer.tar": blob}, links=links)


@pytest.mark.parametrize("name, links", [
    ("y/layer.tar", {"y/layer.tar": "../x/layer.tar"}),  # dockerd 20.10's repeated layers
    ("y/layer.tar", {"y": "x"}),  # a linked directory
    ("y/layer.tar", {"y/layer.tar": "/x/layer.tar"}),  # absolute: from the archive's root
    ("y/layer.tar", {"y/layer.tar": "../../../../x/layer.tar"}),  # `..` stops at the root
    ("./x/layer.tar", {}),
])
def test_links_resolve_inside_the_archive(name, links):
    assert _archive(links).blob(name, "layer").digest == A


def test_links_out_of_the_archive_or_in_a_loop_find_nothing():
    with pytest.raises(InvalidArgument, match="is not in the archive"):
        _archive({"c.json": "/etc/passwd"}).blob("c.json", "config")
    with pytest.raises(InvalidArgument, match="too many levels of links"):
        _archive({"a": "b", "b": "a"}).blob("a", "config")
    with pytest.raises(InvalidArgument, match="escapes the root"):
        _archive({}).blob("../x/layer.tar", "layer")


def test_names_of_an_archive():
    def desc(notes: dict[str, str]) -> Descriptor:
        return Descriptor(mediaType="m", digest=A, size=1, annotations=notes)

    assert _entry_names(desc({"io.containerd.image.name": "busybox:1"})) == ["docker.io/library/busybox:1"]
    assert _entry_names(desc({"org.opencontainers.image.ref.name": "reg:5000/x:2"})) == ["reg:5000/x:2"]
    assert _entry_names(desc({"org.opencontainers.image.ref.name": "latest"})) == []
    assert _tag("busybox:latest") == "docker.io/library/busybox:latest"
    for bad in ("busybox", "busybox@" + A, 3):
        with pytest.raises(InvalidArgument, match="invalid tag"):
            _tag(bad)


def _image(image_id: str, *names: str) -> LocalImage:
    """Names as a pull leaves them: each gives its repository the image's digest."""
    records = [Record(name=n, target={"digest": image_id}, updated=0.0,
                      ref=None if n.startswith(DANGLING_PREFIX) else parse(n)) for n in names]
    return LocalImage(id=image_id, config={}, manifest_digest=image_id, layers=[], records=records)


IMAGES = [_image(A, "docker.io/library/one:1", "docker.io/library/one:2", "docker.io/library/two:1"),
          _image(B, DANGLING_PREFIX + B, f"docker.io/library/pinned@{B}")]


def test_save_selects_as_dockerd():
    whole = select(IMAGES, ["one"])  # a repository alone: every tag of it
    assert whole.tags == ["docker.io/library/one:1", "docker.io/library/one:2"] and whole.unnamed == []
    assert select(IMAGES, ["two:1"]).tags == ["docker.io/library/two:1"]
    by_id = select(IMAGES, [B])
    assert by_id.tags == [] and by_id.unnamed == [DANGLING_PREFIX + B]
    assert select(IMAGES, ["bbbb"]).unnamed == [DANGLING_PREFIX + B]  # an ID prefix, as dockerd's search
    by_digest = select(IMAGES, [f"one@{A}"])
    assert by_digest.tags == [] and [i.id for i in by_digest.images] == [A]
    assert [i.id for i in select(IMAGES, ["one:1", "one:2", A]).images] == [A]
    pinned = select(IMAGES, ["pinned"])  # a repository known only by digest: its image, unnamed
    assert pinned.tags == [] and [i.id for i in pinned.images] == [B]


def test_save_of_unknown_names_in_dockerd_words():
    with pytest.raises(NotFound, match="^reference does not exist$"):
        select(IMAGES, ["one:3"])
    with pytest.raises(NotFound, match="^No such image: nosuch$"):
        select(IMAGES, ["nosuch"])
