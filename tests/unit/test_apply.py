import gzip
import io
import os
import stat
import tarfile

import pytest
import zstandard

from runtime import mount
from runtime.diff.apply import apply_layer
from runtime.diff.apply_overlay import OPAQUE_XATTR
from runtime.diff.decompress import open_decompressed
from runtime.errors import DataLoss, InvalidArgument
from runtime.mount import Mount
from runtime.snapshots.fsutil import remove_tree
from runtime.snapshots.native import NativeSnapshotter
from runtime.snapshots.overlay import OverlaySnapshotter, supported
from tests.unit.tar_entries import d, dev, f, fifo, hard, sym, tar_bytes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="applying layers needs root (chown, mknod, mounts)")


# -- building test tars -----------------------------------------------------------------


def wh(path):
    head, _, base = path.rpartition("/")
    return f((head + "/" if head else "") + ".wh." + base)


def opq(dirpath):
    return f(dirpath.rstrip("/") + "/.wh..wh..opq")


def layer(*entries) -> io.BytesIO:
    return io.BytesIO(tar_bytes(*entries))


def tree(root) -> dict[str, tuple]:
    """Type, content and mode of everything under root (what a union should show)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode))
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(path))
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("p", stat.S_IMODE(st.st_mode))
            else:
                with open(path, "rb") as fh:
                    out[rel] = ("f", fh.read(), stat.S_IMODE(st.st_mode))
    return out


@pytest.fixture(autouse=True)
def _no_leftovers(no_leftover_mounts):
    yield


# -- whiteouts and opaque dirs through real snapshots ----------------------------------------

L1 = (
    d("etc/"),
    f("etc/passwd", b"root"),
    f("etc/hosts", b"localhost"),
    d("etc/conf.d/"),
    f("etc/conf.d/a", b"a"),
    f("etc/conf.d/b", b"b"),
    d("bin/"),
    f("bin/tool", b"T", mode=0o4755),
    sym("bin/sh", "tool"),
    f("usr/share/doc/readme", b"r"),  # parents implied
    fifo("var/fifo"),
    d("data/"),
    f("data/keep", b"k"),
    d("opt/"),
    f("opt/x", b"x"),
)
L2 = (
    f("etc/passwd", b"root\nuser"),
    f("etc/new", b"n"),
    hard("usr/share/doc/hl", "usr/share/doc/readme"),  # target only in a lower layer
    f("data/sub/f", b"f"),
)
L3 = (
    wh("etc/hosts"),
    opq("etc/conf.d"),
    f("etc/conf.d/c", b"c"),
    wh("opt"),
    d("data/"),
    opq("data"),
    f("data/sub/g", b"g"),  # under the opaque dir: only this layer's content survives
    wh("var"),
    d("var/"),  # deleted then recreated in the same layer: must not merge the old one
    f("var/new", b"v"),
)
UNION = {
    "etc": ("d", 0o755),
    "etc/passwd": ("f", b"root\nuser", 0o644),
    "etc/new": ("f", b"n", 0o644),
    "etc/conf.d": ("d", 0o755),
    "etc/conf.d/c": ("f", b"c", 0o644),
    "bin": ("d", 0o755),
    "bin/tool": ("f", b"T", 0o4755),
    "bin/sh": ("l", "tool"),
    "usr": ("d", 0o755),
    "usr/share": ("d", 0o755),
    "usr/share/doc": ("d", 0o755),
    "usr/share/doc/readme": ("f", b"r", 0o644),
    "usr/share/doc/hl": ("f", b"r", 0o644),
    "data": ("d", 0o755),
    "data/sub": ("d", 0o755),
    "data/sub/g": ("f", b"g", 0o644),
    "var": ("d", 0o755),
    "var/new": ("f", b"v", 0o644),
}


@pytest.fixture(params=["overlay", "native"])
async def snapshotter(request, tmp_path):
    root = str(tmp_path / "root")
    if request.param == "overlay":
        reason = supported(root)
        if reason:
            pytest.skip(reason)
        s = OverlaySnapshotter(root)
    else:
        s = NativeSnapshotter(root)
    try:
        yield s
    finally:
        await s.close()


async def _apply_chain(s, layers) -> str | None:
    parent = None
    for i, entries in enumerate(layers):
        mounts = await s.prepare(f"extract-{i}", parent)
        data = tar_bytes(*entries)
        assert apply_layer(io.BytesIO(data), mounts) == len(data)
        await s.commit(f"layer-{i}", f"extract-{i}")
        parent = f"layer-{i}"
    return parent


async def test_layers_produce_the_docker_union(snapshotter, tmp_path):
    top = await _apply_chain(snapshotter, [L1, L2, L3])
    target = tmp_path / "merged"
    target.mkdir()
    mount.mount_all(await snapshotter.view("check", top), str(target))
    try:
        assert tree(target) == UNION
        a, b = os.stat(target / "usr/share/doc/readme"), os.stat(target / "usr/share/doc/hl")
        assert a.st_nlink == b.st_nlink == 2
    finally:
        mount.unmount(str(target))


async def test_opaque_root(snapshotter, tmp_path):
    # overlayfs ignores the opaque xattr on its root dir, so this needs emulating
    top = await _apply_chain(
        snapshotter,
        [
            (f("a", b"a"), f("dir/x", b"x"), f("dir2/y", b"y")),
            (f("dir/early", b"e"), opq("."), f("b", b"b"), f("dir2/z", b"z")),
        ],
    )
    target = tmp_path / "merged"
    target.mkdir()
    mount.mount_all(await snapshotter.view("check", top), str(target))
    try:
        assert tree(target) == {
            "b": ("f", b"b", 0o644),
            "dir": ("d", 0o755),
            "dir/early": ("f", b"e", 0o644),
            "dir2": ("d", 0o755),
            "dir2/z": ("f", b"z", 0o644),
        }
    finally:
        mount.unmount(str(target))


async def test_overlay_upper_uses_overlayfs_format(tmp_path):
    root = str(tmp_path / "root")
    if reason := supported(root):
        pytest.skip(reason)
    s = OverlaySnapshotter(root)
    try:
        await _apply_chain(s, [L1, L2])
        mounts = await s.prepare("x", "layer-1")
        apply_layer(layer(*L3), mounts)
        upper = next(o.split("=", 1)[1] for o in mounts[0].options if o.startswith("upperdir="))
        st = os.lstat(os.path.join(upper, "etc/hosts"))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.getxattr(os.path.join(upper, "etc/conf.d"), OPAQUE_XATTR) == b"y"
        assert os.getxattr(os.path.join(upper, "var"), OPAQUE_XATTR) == b"y"
        assert sorted(os.listdir(os.path.join(upper, "etc/conf.d"))) == ["c"]
    finally:
        await s.close()


def test_metadata_is_preserved(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    big = os.urandom(3 * (1 << 20) + 17)
    entries = (
        d("dir/", mode=0o750, mtime=1_500_000_000),
        f("dir/big", big, mode=0o640, uid=1000, gid=1001, mtime=1_400_000_000),
        f("dir/suid", b"s", mode=0o6755, uid=1000, gid=1000),
        f("dir/attrs", b"x", xattrs={"user.color": "blue", "trusted.overlay.redirect": "/etc"}),
        sym("dir/link", "/nowhere"),
        fifo("dir/pipe"),
    )
    apply_layer(layer(*entries), [Mount(type="bind", source=str(root), options=["rbind", "rw"])])
    st = os.stat(root / "dir/big")
    assert (root / "dir/big").read_bytes() == big
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o640, 1000, 1001, 1_400_000_000)
    st = os.stat(root / "dir/suid")
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o6755, 1000)
    assert os.stat(root / "dir").st_mtime == 1_500_000_000  # set after its children were written
    assert stat.S_IMODE(os.stat(root / "dir").st_mode) == 0o750
    assert os.getxattr(root / "dir/attrs", "user.color") == b"blue"
    assert "trusted.overlay.redirect" not in os.listxattr(root / "dir/attrs")
    assert os.readlink(root / "dir/link") == "/nowhere"
    assert stat.S_ISFIFO(os.lstat(root / "dir/pipe").st_mode)


def test_replacing_types_and_normal_path_forms(tmp_path):
    root = tmp_path / "root"
    (root / "was_dir" / "inner").mkdir(parents=True)
    (root / "was_file").write_text("x")
    entries = (
        f("./was_dir", b"now a file"),
        d("was_file/"),
        d("./a/"),
        f("./a/b", b"b"),
        d("c/"),
        d("c"),  # existing dir: metadata only
    )
    apply_layer(layer(*entries), [Mount(type="bind", source=str(root), options=["rbind"])])
    assert (root / "was_dir").read_text() == "now a file"
    assert (root / "was_file").is_dir()
    assert (root / "a/b").read_text() == "b"


def test_deep_paths_and_removing_them(tmp_path):
    deep = "/".join(["d"] * 2500)  # longer than PATH_MAX, deeper than the recursion limit
    root = tmp_path / "root"
    root.mkdir()
    bind = [Mount(type="bind", source=str(root), options=["rbind"])]
    try:
        apply_layer(layer(f(f"{deep}/leaf", b"x"), f("keep", b"k")), bind)
        apply_layer(layer(wh("d")), bind)
        assert os.listdir(root) == ["keep"]
    finally:
        remove_tree(str(root))  # pytest's own tmp cleanup recurses and would choke on a leftover


def test_fallback_mounts_and_applies_natively(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    (upper / "old").touch()
    mounts = [
        Mount(type="bind", source=str(lower), options=["rbind"]),
        Mount(type="bind", source=str(upper), options=["rbind"]),
    ]
    apply_layer(layer(f("new", b"n"), wh("old")), mounts)
    assert sorted(os.listdir(upper)) == ["new"]
    assert os.listdir(lower) == []


def test_read_only_mounts_are_rejected(tmp_path):
    with pytest.raises(InvalidArgument, match="read-only"):
        apply_layer(layer(f("x")), [Mount(type="bind", source=str(tmp_path), options=["rbind", "ro"])])
    with pytest.raises(InvalidArgument, match="upperdir"):
        apply_layer(layer(f("x")), [Mount(type="overlay", source="overlay", options=[f"lowerdir={tmp_path}"])])


def test_empty_and_corrupt_streams(tmp_path):
    bind = [Mount(type="bind", source=str(tmp_path), options=["rbind"])]
    assert apply_layer(io.BytesIO(b""), bind) == 0
    assert apply_layer(layer(), bind) > 0
    with pytest.raises(DataLoss):
        apply_layer(io.BytesIO(tar_bytes(f("big", b"x" * 100_000))[:50_000]), bind)


# -- hostile layers ------------------------------------------------------------------------


@pytest.fixture(params=["native", "overlay"])
def hostile(request, tmp_path):
    """(mounts, canary dir) for a snapshot with a pre-existing symlink pointing at the canary.

    In overlay mode the symlink lives in a lower layer, so the merged view matters.
    """
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "secret").write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    if request.param == "native":
        os.symlink(str(canary), root / "pre")
        mounts = [Mount(type="bind", source=str(root), options=["rbind", "rw"])]
    else:
        lower = tmp_path / "lower"
        lower.mkdir()
        os.symlink(str(canary), lower / "pre")
        (tmp_path / "work").mkdir()
        mounts = [
            Mount(
                type="overlay",
                source="overlay",
                options=[f"workdir={tmp_path / 'work'}", f"upperdir={root}", f"lowerdir={lower}"],
            )
        ]
    return mounts, canary


def hostile_cases(c: str) -> dict[str, tuple[str, list]]:
    """case -> (the entry that must be refused, the layer); `c` is the canary dir."""
    return {
        "absolute": (f"{c}/abs", [f(f"{c}/abs", b"pwned")]),
        "absolute-dir": (f"{c}/dir", [d(f"{c}/dir/")]),
        "dotdot": ("../../canary/x", [f("../../canary/x", b"pwned")]),
        "dotdot-inner": ("a/../../canary/x", [d("a/"), f("a/../../canary/x", b"pwned")]),
        "symlink-in-tar": ("evil/pwned", [sym("evil", c), f("evil/pwned", b"pwned")]),
        "relative-symlink-in-tar": ("evil/pwned", [sym("evil", "../canary"), f("evil/pwned", b"pwned")]),
        "symlink-on-disk": ("pre/pwned", [f("pre/pwned", b"pwned")]),
        "symlink-deep": ("pre/sub", [d("pre/sub/"), f("pre/sub/x", b"x")]),
        "dir-through-symlink": ("evil/newdir", [sym("evil", c), d("evil/newdir/")]),
        "hardlink-dotdot": ("h", [hard("h", "../canary/secret")]),
        "hardlink-absolute": ("h", [hard("h", f"{c}/secret")]),
        "hardlink-via-symlink": ("h", [sym("evil", c), hard("h", "evil/secret")]),
        "hardlink-via-disk-symlink": ("h", [hard("h", "pre/secret")]),
        "hardlink-into-symlink-dir": ("evil/h", [f("t", b"t"), sym("evil", c), hard("evil/h", "t")]),
        "whiteout-through-symlink": ("pre/.wh.secret", [wh("pre/secret")]),
        "opaque-through-symlink": ("pre/.wh..wh..opq", [opq("pre")]),
        "symlink-then-fifo": ("evil/p", [sym("evil", c), fifo("evil/p")]),
        "char-device": ("dev/mem", [d("dev/"), dev("dev/mem", minor=1)]),
        "whiteout-device": ("w", [dev("w", major=0, minor=0)]),
        "block-device": ("dev/sda", [dev("dev/sda", tarfile.BLKTYPE)]),
    }


@pytest.mark.parametrize("case", sorted(hostile_cases("/c")))
def test_hostile_entries_are_refused(case, hostile, tmp_path):
    mounts, canary = hostile
    entry, entries = hostile_cases(str(canary))[case]
    outside = sorted(os.listdir(tmp_path))
    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(InvalidArgument) as exc:
        apply_layer(layer(*entries), mounts)
    assert len(os.listdir("/proc/self/fd")) == fds  # refusals leak no fds
    assert str(exc.value).startswith(f"refusing layer entry {entry!r}: ")
    assert (canary / "secret").read_text() == "secret"
    assert os.stat(canary / "secret").st_nlink == 1
    assert os.listdir(canary) == ["secret"]
    assert sorted(os.listdir(tmp_path)) == outside


def test_symlink_as_final_component_is_replaced_not_followed(hostile):
    mounts, canary = hostile
    apply_layer(layer(sym("link", str(canary / "secret")), f("link", b"overwritten"), f("pre", b"file")), mounts)
    assert (canary / "secret").read_text() == "secret"
    assert sorted(os.listdir(canary)) == ["secret"]


def test_the_devices_every_container_has_are_made(hostile, tmp_path):
    # What a debootstrap or chroot tarball carries under dev/ (dockerd imports them all; only these are taken).
    mounts, _ = hostile
    apply_layer(layer(d("dev/"), dev("dev/null"), dev("dev/ptmx", major=5, minor=2)), mounts)
    target = tmp_path / "view"
    target.mkdir()
    mount.mount_all(mounts, str(target))
    try:
        for name, rdev in (("null", os.makedev(1, 3)), ("ptmx", os.makedev(5, 2))):
            st = os.lstat(target / "dev" / name)
            assert stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev and stat.S_IMODE(st.st_mode) == 0o666
    finally:
        mount.unmount(str(target))


# -- decompression -------------------------------------------------------------------------


def test_gzip_and_zstd_streams(tmp_path):
    one = tar_bytes(f("a", b"A" * 200_000), f("b", os.urandom(100_000)))
    # concatenated gzip members and multiple zstd frames are both one stream
    gz = gzip.compress(one[:7000]) + gzip.compress(one[7000:])
    zst = zstandard.ZstdCompressor().compress(one[:7000]) + zstandard.ZstdCompressor().compress(one[7000:])
    for name, blob, compression in (("gz", gz, "gzip"), ("zst", zst, "zstd"), ("raw", one, "none")):
        root = tmp_path / name
        root.mkdir()
        stream = open_decompressed(io.BytesIO(blob), compression)
        consumed = apply_layer(stream, [Mount(type="bind", source=str(root), options=["rbind"])])
        assert consumed == len(one)
        assert (root / "a").read_bytes() == b"A" * 200_000
        assert len((root / "b").read_bytes()) == 100_000


def test_corrupt_compressed_streams_are_data_loss():
    for blob, compression in ((b"not gzip at all" * 10, "gzip"), (b"not zstd at all" * 10, "zstd")):
        with pytest.raises(DataLoss):
            open_decompressed(io.BytesIO(blob), compression).read()
    truncated = gzip.compress(os.urandom(50_000))[:-100]
    with pytest.raises(DataLoss):
        open_decompressed(io.BytesIO(truncated), "gzip").read()
    with pytest.raises(InvalidArgument):
        open_decompressed(io.BytesIO(b""), "lz4")  # type: ignore[arg-type]
