"""One behavioural suite, run against every snapshotter (containerd semantics)."""
import asyncio
import errno
import os
import sqlite3
from collections.abc import Callable

import pytest

from runtime import mount
from runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
)
from runtime.mount import Mount
from runtime.snapshots.fsutil import remove_tree
from runtime.snapshots.native import NativeSnapshotter
from runtime.snapshots.overlay import OverlaySnapshotter, supported
from runtime.snapshots.snapshotter import Kind, Snapshotter

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="snapshotters mount, which needs root")


def _mounted_under(path: str) -> list[str]:
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(path)]


@pytest.fixture(params=["overlay", "native"])
async def snapshotter(request, tmp_path):
    root = str(tmp_path / "root")
    if request.param == "overlay":
        reason = supported(root)
        if reason:
            pytest.skip(reason)
        s: Snapshotter = OverlaySnapshotter(root)
    else:
        s = NativeSnapshotter(root)
    try:
        yield s
    finally:
        await s.close()
        await mount.unmount_all_under_async(str(tmp_path), detach=True)
        assert _mounted_under(str(tmp_path)) == []


@pytest.fixture
def target(tmp_path) -> Callable[[], str]:
    """Fresh mount point dirs; the snapshotter fixture unmounts whatever is left."""
    n = 0

    def make() -> str:
        nonlocal n
        n += 1
        path = tmp_path / "mnt" / str(n)
        path.mkdir(parents=True)
        return str(path)

    return make


async def _write(mounts: list[Mount], where: str, changes: dict[str, str | None]) -> None:
    """Apply `changes` through a real mount: text writes a file, None deletes."""
    await mount.mount_all_async(mounts, where)
    try:
        for rel, content in changes.items():
            path = os.path.join(where, rel)
            if content is None:
                os.unlink(path)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(content)
    finally:
        await mount.unmount_async(where)


async def _read(mounts: list[Mount], where: str) -> dict[str, str]:
    await mount.mount_all_async(mounts, where)
    try:
        out = {}
        for dirpath, _, files in os.walk(where):
            for name in files:
                path = os.path.join(dirpath, name)
                with open(path) as f:
                    out[os.path.relpath(path, where)] = f.read()
        return out
    finally:
        await mount.unmount_async(where)


async def _chain(s: Snapshotter, target: Callable[[], str]) -> None:
    """l1 <- l2 <- l3, each changing the tree through a real mount."""
    await _write(await s.prepare("a1"), target(), {"base": "1", "etc/conf": "v1", "gone": "x"})
    await s.commit("l1", "a1", labels={"layer": "1"})
    await _write(await s.prepare("a2", "l1"), target(), {"two": "2", "etc/conf": "v2", "gone": None})
    await s.commit("l2", "a2")
    await _write(await s.prepare("a3", "l2"), target(), {"three": "3"})
    await s.commit("l3", "a3")


async def test_prepare_commit_chain(snapshotter, target):
    s = snapshotter
    mounts = await s.prepare("a1")
    assert len(mounts) == 1 and mounts[0].type == "bind" and "rw" in mounts[0].options
    await _write(mounts, target(), {"base": "1"})
    await s.commit("l1", "a1", labels={"layer": "1"})
    with pytest.raises(NotFound):
        await s.stat("a1")
    info = await s.stat("l1")
    assert (info.name, info.key, info.parent, info.kind) == ("l1", "l1", None, Kind.COMMITTED)
    assert info.labels == {"layer": "1"}
    await s.prepare("a2", "l1", labels={"x": "y"})
    info = await s.stat("a2")
    assert (info.parent, info.kind, info.labels) == ("l1", Kind.ACTIVE, {"x": "y"})
    await s.commit("l2", "a2")
    assert (await s.stat("l2")).parent == "l1"
    assert (await s.stat("l2")).labels == {}


async def test_three_level_union_and_writes_stay_in_the_active(snapshotter, target):
    s = snapshotter
    await _chain(s, target)
    top = await s.prepare("top", "l3")
    union = {"base": "1", "etc/conf": "v2", "two": "2", "three": "3"}
    assert await _read(top, target()) == union
    assert await _read(await s.mounts("top"), target()) == union

    await _write(top, target(), {"mine": "m", "base": "changed", "two": None})
    assert await _read(top, target()) == {"base": "changed", "etc/conf": "v2", "three": "3", "mine": "m"}
    # the committed layers below are untouched
    assert await _read(await s.view("v3", "l3"), target()) == union
    assert await _read(await s.view("v1", "l1"), target()) == {"base": "1", "etc/conf": "v1", "gone": "x"}


async def test_views_are_read_only_and_cannot_be_committed(snapshotter, target):
    s = snapshotter
    await _chain(s, target)
    for key, parent in (("v1", "l1"), ("v3", "l3")):
        mounts = await s.view(key, parent)
        assert (await s.stat(key)).kind == Kind.VIEW
        where = target()
        await mount.mount_all_async(mounts, where)
        try:
            with pytest.raises(OSError) as exc:
                with open(os.path.join(where, "new"), "w"):
                    pass
            assert exc.value.errno == errno.EROFS
        finally:
            await mount.unmount_async(where)
        with pytest.raises(FailedPrecondition):
            await s.commit(f"c-{key}", key)
    with pytest.raises(FailedPrecondition):
        await s.mounts("l1")


async def test_keys_are_unique_across_kinds(snapshotter):
    s = snapshotter
    await s.prepare("a")
    with pytest.raises(AlreadyExists):
        await s.prepare("a")
    with pytest.raises(AlreadyExists):
        await s.view("a", None)
    await s.commit("c", "a")
    await s.prepare("a", "c")  # the active key is free again after commit
    for op in (s.prepare("c"), s.view("c", "c"), s.commit("c", "a")):
        with pytest.raises(AlreadyExists):
            await op
    assert (await s.stat("a")).kind == Kind.ACTIVE  # the failed commit left it alone


async def test_concurrent_prepares_of_one_key(snapshotter):
    s = snapshotter
    results = await asyncio.gather(*(s.prepare("same") for _ in range(4)), return_exceptions=True)
    assert sum(isinstance(r, list) for r in results) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if not isinstance(r, list))
    assert [i.name for i in await s.walk()] == ["same"]
    assert not [n for n in os.listdir(os.path.join(s.root, "snapshots")) if n.startswith(".")]


async def test_not_found_and_invalid_parents(snapshotter):
    s = snapshotter
    for op in (s.stat("nope"), s.usage("nope"), s.mounts("nope"), s.remove("nope"), s.commit("x", "nope")):
        with pytest.raises(NotFound):
            await op
    with pytest.raises(NotFound):
        await s.prepare("a", "nope")
    await s.prepare("active")
    await s.view("view", None)
    with pytest.raises(InvalidArgument, match="not a committed"):
        await s.prepare("b", "active")
    with pytest.raises(InvalidArgument):
        await s.view("b", "view")
    await s.commit("c", "active")
    with pytest.raises(FailedPrecondition):
        await s.commit("d", "c")
    with pytest.raises(InvalidArgument):
        await s.prepare("")
    # failed creates leave no build dirs behind
    assert not [n for n in os.listdir(os.path.join(s.root, "snapshots")) if n.startswith(".")]


async def test_remove(snapshotter, target):
    s = snapshotter
    await _chain(s, target)
    await s.view("v", "l3")
    with pytest.raises(FailedPrecondition, match="children"):
        await s.remove("l3")
    with pytest.raises(FailedPrecondition, match="children"):
        await s.remove("l1")
    await s.remove("v")
    for key in ("l3", "l2", "l1"):
        await s.remove(key)
        with pytest.raises(NotFound):
            await s.stat(key)
    with pytest.raises(NotFound):
        await s.remove("l1")
    assert os.listdir(os.path.join(s.root, "snapshots")) == []


async def test_walk_and_update(snapshotter, target):
    s = snapshotter
    await _chain(s, target)
    await s.prepare("work", "l3", labels={"a": "1", "b": "2"})
    infos = await s.walk()
    assert [(i.name, i.parent, i.kind) for i in infos] == [
        ("l1", None, Kind.COMMITTED),
        ("l2", "l1", Kind.COMMITTED),
        ("l3", "l2", Kind.COMMITTED),
        ("work", "l3", Kind.ACTIVE),
    ]
    assert [i.name for i in await s.walk(lambda i: i.kind == Kind.ACTIVE)] == ["work"]

    info = await s.stat("work")
    info.labels = {"a": "changed", "c": "3"}
    updated = await s.update(info, ["labels.a", "labels.b"])
    assert updated.labels == {"a": "changed"}
    assert updated.updated >= updated.created
    updated = await s.update(info)
    assert updated.labels == {"a": "changed", "c": "3"}
    with pytest.raises(InvalidArgument):
        await s.update(info, ["kind"])
    info.name = "nope"
    with pytest.raises(NotFound):
        await s.update(info)

    # everything is in metadata.db: a new instance on the same root sees it
    await s.close()
    again = type(s)(s.root)
    try:
        assert [i.name for i in await again.walk()] == ["l1", "l2", "l3", "work"]
        assert (await again.stat("work")).labels == {"a": "changed", "c": "3"}
    finally:
        await again.close()


async def test_usage_counts_bytes_and_inodes(snapshotter, target):
    s = snapshotter
    mounts = await s.prepare("a")
    where = target()
    await mount.mount_all_async(mounts, where)
    try:
        with open(os.path.join(where, "big"), "wb") as f:
            f.write(os.urandom(1 << 20))
        os.mkdir(os.path.join(where, "dir"))
        with open(os.path.join(where, "dir", "small"), "wb") as f:
            f.write(b"x" * 10)
        os.link(os.path.join(where, "big"), os.path.join(where, "dir", "again"))
        os.symlink("dir/small", os.path.join(where, "link"))
    finally:
        await mount.unmount_async(where)
    usage = await s.usage("a")
    assert usage.size >= 1 << 20
    assert usage.inodes >= 5  # root, big, dir, small, link
    # Docker's size: file contents and the symlink's target, the hardlinked file once, directories not at all.
    assert usage.content == (1 << 20) + 10 + len("dir/small")
    await s.commit("c", "a")
    assert await s.usage("c") == usage


async def test_usage_of_a_layer_committed_before_content_bytes_were_recorded(tmp_path):
    root = str(tmp_path / "root")
    s = NativeSnapshotter(root)
    try:
        mounts = await s.prepare("a")
        with open(os.path.join(mounts[0].source, "f"), "wb") as f:
            f.write(b"y" * 1000)
        await s.commit("c", "a")
    finally:
        await s.close()
    # As schema version 1 left it: no content column, nothing recorded of it.
    db = sqlite3.connect(os.path.join(root, "metadata.db"))
    with db:
        db.execute("ALTER TABLE snapshots DROP COLUMN content")
        db.execute("UPDATE schema_version SET version = 1")
    db.close()
    again = NativeSnapshotter(root)
    try:
        assert (await again.usage("c")).content == 1000
        assert (await again.usage("c")).content == 1000
    finally:
        await again.close()
    db = sqlite3.connect(os.path.join(root, "metadata.db"))
    try:
        assert db.execute("SELECT version FROM schema_version").fetchone() == (2,)
        assert db.execute("SELECT content FROM snapshots WHERE key = 'c'").fetchone() == (1000,)
    finally:
        db.close()


def _make_deep(root: str, depth: int) -> None:
    """A chain of `depth` dirs: deeper than both the recursion limit and PATH_MAX."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d" * 10, dir_fd=fd)
            nxt = os.open("d" * 10, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


async def test_very_deep_trees_can_be_measured_committed_and_removed(snapshotter, target, tmp_path):
    s = snapshotter
    try:
        mounts = await s.prepare("deep")
        where = target()
        await mount.mount_all_async(mounts, where)
        try:
            await asyncio.to_thread(_make_deep, where, 1500)
        finally:
            await mount.unmount_async(where)
        assert (await s.usage("deep")).inodes >= 1502
        await s.commit("deep-c", "deep")
        if isinstance(s, NativeSnapshotter):
            # cp(1) cannot copy paths longer than PATH_MAX: a clean, typed failure
            with pytest.raises(Internal, match="File name too long"):
                await s.view("deep-v", "deep-c")
        else:
            await s.view("deep-v", "deep-c")
            await s.remove("deep-v")
        await s.remove("deep-c")
        assert os.listdir(os.path.join(s.root, "snapshots")) == []
    finally:
        # pytest's own tmp cleanup recurses and would choke on whatever a failure left
        await mount.unmount_all_under_async(str(tmp_path), detach=True)
        await asyncio.to_thread(remove_tree, os.path.join(s.root, "snapshots"))


async def test_remove_never_deletes_into_a_mount(snapshotter, tmp_path):
    s = snapshotter
    mounts = await s.prepare("a")
    fs = mounts[0].source  # the snapshot's own dir (a bind mount for a parentless active)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep me")
    os.mkdir(os.path.join(fs, "sub"))
    await mount.mount_all_async([Mount(type="bind", source=str(precious), options=["rbind"])], os.path.join(fs, "sub"))
    await s.remove("a")  # the snapshot is gone; its directory waits for cleanup
    with pytest.raises(NotFound):
        await s.stat("a")
    assert (precious / "data").read_text() == "keep me"
    assert await s.cleanup() == []
    assert (precious / "data").read_text() == "keep me"
    await mount.unmount_all_under_async(s.root)
    assert len(await s.cleanup()) == 1
    assert os.listdir(os.path.join(s.root, "snapshots")) == []


async def test_cleanup_removes_crash_leftovers(snapshotter, target):
    s = snapshotter
    await _chain(s, target)
    snapdir = os.path.join(s.root, "snapshots")
    known = sorted(os.listdir(snapdir))
    # what an interrupted create, an interrupted remove and a lost db row leave behind
    leftovers = [".tmp-deadbeef", ".rm-77", "999"]
    for name in leftovers:
        os.makedirs(os.path.join(snapdir, name, "fs", "deep"))
        with open(os.path.join(snapdir, name, "fs", "deep", "file"), "w") as f:
            f.write("x")
    removed = await s.cleanup()
    assert sorted(removed) == sorted(leftovers)
    assert sorted(os.listdir(snapdir)) == known
    assert await _read(await s.view("v", "l3"), target()) == {
        "base": "1",
        "etc/conf": "v2",
        "two": "2",
        "three": "3",
    }
    assert await s.cleanup() == []
