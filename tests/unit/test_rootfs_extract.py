"""Copying a tar into a container (runtime.rootfs.extract): hostile tars and hostile containers."""
import errno
import gzip
import os
import stat
import tarfile

import pytest

from runtime import untrusted_tar as ut
from runtime.errors import Internal, InvalidArgument, NotFound, PermissionDenied
from runtime.rootfs.extract import ExtractOptions, extract
from runtime.rootfs.view import Bind, Rootfs
from tests.unit.tar_entries import d, dev, f, fifo, hard, sym, tar_bytes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="extracting with owners and fifos needs root")


def spool(tmp_path, data: bytes):
    fh = open(tmp_path / f"spool-{len(os.listdir(tmp_path))}", "w+b")
    fh.write(data)
    fh.flush()
    return fh


# -- a container's filesystem on a plain dir -------------------------------------------


@pytest.fixture
def box(tmp_path):
    """(rootfs factory, root dir, canary dir outside the root holding 'secret')."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "secret").write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").mkdir()
    (root / "tmp").mkdir()
    opened = []

    def make(readonly=False, binds=None, owner=(0, 0)):
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        opened.append(fd)
        return Rootfs(key=("ns", "c1"), fd=fd, readonly=readonly, owner=owner, binds=binds or {})

    yield make, root, canary
    for fd in opened:
        os.close(fd)


def put(tmp_path, rootfs, path, *entries, raw=None, **opts):
    with spool(tmp_path, raw if raw is not None else tar_bytes(*entries)) as fh:
        extract(rootfs, path, fh, ExtractOptions(**opts))


def tree(path):
    out = []
    for dirpath, dirs, files in os.walk(path):
        rel = os.path.relpath(dirpath, path)
        out += [os.path.normpath(os.path.join(rel, n)) for n in dirs + files]
    return sorted(out)


def assert_canary_intact(canary):
    assert os.listdir(canary) == ["secret"]
    assert (canary / "secret").read_text() == "secret"
    assert os.stat(canary / "secret").st_nlink == 1


# -- hostile tars: refused whole, before anything is written ----------------------------------


def hostile_cases(c: str) -> dict[str, tuple[str, list]]:
    """case -> (the entry that must be refused, the tar); `c` is the canary dir (outside the root)."""
    return {
        "absolute": (f"{c}/abs", [f("ok", b"first"), f(f"{c}/abs", b"pwned")]),
        "absolute-dir": (f"{c}/dir", [d(f"{c}/dir/")]),
        "dotdot": ("../canary/x", [f("ok", b"first"), f("../canary/x", b"pwned")]),
        "dotdot-inner": ("a/../../canary/x", [d("a/"), f("a/../../canary/x", b"pwned")]),
        "symlink-then-write-through": ("evil/pwned", [sym("evil", c), f("evil/pwned", b"pwned")]),
        "relative-symlink-then-write-through": ("evil/pwned",
                                                [sym("evil", "../canary"), f("evil/pwned", b"pwned")]),
        "symlink-then-dir": ("evil/newdir", [sym("evil", c), d("evil/newdir/")]),
        "symlink-then-fifo": ("evil/p", [sym("evil", c), fifo("evil/p")]),
        "symlink-deep": ("evil/a/b", [sym("evil", "/"), f("evil/a/b", b"x")]),
        "file-then-write-through": ("f/x", [f("f", b"file"), f("f/x", b"x")]),
        "hardlink-dotdot": ("h", [hard("h", "../canary/secret")]),
        "hardlink-absolute": ("h", [hard("h", f"{c}/secret")]),
        "hardlink-via-tar-symlink": ("h", [sym("evil", c), hard("h", "evil/secret")]),
        "hardlink-into-tar-symlink-dir": ("evil/h", [f("t", b"t"), sym("evil", c), hard("evil/h", "t")]),
        "hardlink-to-dir": ("h", [d("sub/"), hard("h", "sub")]),
        "hardlink-to-root": ("h", [hard("h", ".")]),
        "char-device": ("dev/null", [d("dev/"), dev("dev/null")]),
        "block-device": ("sda", [dev("sda", tarfile.BLKTYPE)]),
        "root-as-file": (".", [f(".", b"x")]),
    }


@pytest.mark.parametrize("case", sorted(hostile_cases("/c")))
def test_hostile_entries_are_refused_and_nothing_is_written(case, box, tmp_path):
    make, root, canary = box
    entry, entries = hostile_cases(str(canary))[case]
    before_root, before_outside = tree(root), sorted(os.listdir(tmp_path))
    rootfs = make()
    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(InvalidArgument) as exc:
        put(tmp_path, rootfs, "/tmp", *entries)
    assert str(exc.value).startswith(f"refusing archive entry {entry!r}: ")
    assert len(os.listdir("/proc/self/fd")) == fds  # refusals leak no fds
    assert tree(root) == before_root  # checked whole before the first write
    assert_canary_intact(canary)
    assert sorted(n for n in os.listdir(tmp_path) if not n.startswith("spool")) == \
        sorted(n for n in before_outside if not n.startswith("spool"))


def test_a_corrupt_tar_is_invalid_argument(box, tmp_path):
    make, root, _ = box
    with pytest.raises(InvalidArgument, match="invalid tar"):
        put(tmp_path, make(), "/tmp", raw=tar_bytes(f("a", b"x" * 5000))[:1500])


# -- hostile containers: symlinks already on disk resolve inside the root -----------------------


def test_destination_symlink_to_an_outside_path_stays_inside(box, tmp_path):
    make, root, canary = box
    os.symlink(str(canary), root / "tmp" / "out")  # absolute host path: means <root><canary> inside
    with pytest.raises(NotFound):
        put(tmp_path, make(), "/tmp/out", f("pwned", b"x"))
    (root / str(canary).lstrip("/")).mkdir(parents=True)
    put(tmp_path, make(), "/tmp/out", f("pwned", b"x"))
    assert (root / str(canary).lstrip("/") / "pwned").read_bytes() == b"x"
    assert_canary_intact(canary)


def test_destination_symlink_climbing_out_stops_at_the_root(box, tmp_path):
    make, root, canary = box
    os.symlink("../../../../../../..", root / "tmp" / "up")
    put(tmp_path, make(), "/tmp/up", f("landed", b"x"))
    assert (root / "landed").read_bytes() == b"x"
    os.symlink("/", root / "rootlink")
    put(tmp_path, make(), "/rootlink/etc/", f("passwd", b"root:x:0:0::/:/bin/sh\n"))
    assert (root / "etc" / "passwd").exists()
    assert_canary_intact(canary)
    assert not os.path.exists(tmp_path / "landed")


def test_entries_through_container_symlinks_are_followed_inside_the_root(box, tmp_path):
    make, root, canary = box
    (root / "usr" / "lib").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")  # merged /usr, as in Debian images
    os.symlink(str(canary), root / "pre")  # a container pointing at a host path
    os.symlink("../..", root / "tmp" / "dotdot")
    put(tmp_path, make(), "/", f("lib/libx.so", b"lib"), f("pre/pwned", b"x"), f("tmp/dotdot/top", b"t"))
    assert (root / "usr" / "lib" / "libx.so").read_bytes() == b"lib"
    assert (root / str(canary).lstrip("/") / "pwned").read_bytes() == b"x"  # made inside the root
    assert (root / "top").read_bytes() == b"t"
    assert_canary_intact(canary)


def test_final_symlink_is_replaced_not_followed(box, tmp_path):
    make, root, canary = box
    os.symlink(str(canary / "secret"), root / "tmp" / "link")
    put(tmp_path, make(), "/tmp", f("link", b"overwritten"))
    assert (root / "tmp" / "link").read_bytes() == b"overwritten"
    assert not os.path.islink(root / "tmp" / "link")
    assert_canary_intact(canary)


def test_hardlinks_through_container_symlinks_cannot_reach_outside(box, tmp_path):
    make, root, canary = box
    os.symlink(str(canary), root / "pre")
    os.symlink("../../../..", root / "up")
    for target in ("pre/secret", "up/canary/secret"):
        with pytest.raises(InvalidArgument, match="does not exist"):
            put(tmp_path, make(), "/tmp", hard("h", target))
    assert_canary_intact(canary)
    (root / "etc" / "shadow").write_text("x")
    put(tmp_path, make(), "/", hard("tmp/h", "up/etc/shadow"))  # resolves to the container's own /etc/shadow
    assert os.stat(root / "tmp" / "h").st_ino == os.stat(root / "etc" / "shadow").st_ino


# -- ordinary copies --------------------------------------------------------------------------


def test_tree_with_every_kind_of_entry(box, tmp_path):
    make, root, _ = box
    put(tmp_path, make(), "/tmp",
        d("./"), d("app/", 0o750), f("app/run.sh", b"#!/bin/sh\n", 0o4755, uid=1000, gid=1000),
        sym("app/current", "run.sh"), hard("app/again", "app/run.sh"), fifo("app/pipe"),
        f("new/deep/file", b"made parents"))
    app = root / "tmp" / "app"
    st = os.stat(app / "run.sh")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4755, 1000, 1000)  # setuid is fine
    assert stat.S_IMODE(os.stat(app).st_mode) == 0o750
    assert os.stat(app).st_mtime == 1_600_000_000
    assert os.readlink(app / "current") == "run.sh"
    assert os.stat(app / "again").st_ino == st.st_ino
    assert stat.S_ISFIFO(os.lstat(app / "pipe").st_mode)
    assert (root / "tmp" / "new" / "deep" / "file").read_bytes() == b"made parents"
    assert stat.S_IMODE(os.stat(root / "tmp" / "new").st_mode) == 0o755


def test_gzip_tar_and_empty_body(box, tmp_path):
    make, root, _ = box
    put(tmp_path, make(), "/tmp", raw=gzip.compress(tar_bytes(f("z", b"zipped"))))
    assert (root / "tmp" / "z").read_bytes() == b"zipped"
    put(tmp_path, make(), "/tmp", raw=b"")


def test_destination_must_be_an_existing_directory(box, tmp_path):
    make, root, _ = box
    (root / "etc" / "hosts").write_text("h")
    with pytest.raises(NotFound):
        put(tmp_path, make(), "/nope", f("a"))
    with pytest.raises(InvalidArgument, match="not a directory"):
        put(tmp_path, make(), "/etc/hosts", f("a"))


def test_no_overwrite_dir_non_dir(box, tmp_path):
    make, root, _ = box
    (root / "tmp" / "dir").mkdir()
    (root / "tmp" / "file").write_text("f")
    with pytest.raises(InvalidArgument, match="cannot overwrite directory"):
        put(tmp_path, make(), "/tmp", f("dir", b"x"), no_overwrite_dir_non_dir=True)
    with pytest.raises(InvalidArgument, match="cannot overwrite non-directory"):
        put(tmp_path, make(), "/tmp", d("file/"), no_overwrite_dir_non_dir=True)
    put(tmp_path, make(), "/tmp", f("dir", b"x"))  # Docker's default: replace
    assert (root / "tmp" / "dir").read_bytes() == b"x"


def test_copy_uid_gid_gives_everything_to_the_container_user(box, tmp_path):
    make, root, _ = box
    put(tmp_path, make(owner=(1234, 5678)), "/tmp", d("d/"), f("d/a", b"a", uid=1, gid=2), sym("d/l", "a"),
        copy_uid_gid=True)
    for name in ("d", "d/a", "d/l"):
        st = os.lstat(root / "tmp" / name)
        assert (st.st_uid, st.st_gid) == (1234, 5678), name
    put(tmp_path, make(owner=(1234, 5678)), "/tmp", f("kept", b"k", uid=7, gid=8))
    st = os.stat(root / "tmp" / "kept")
    assert (st.st_uid, st.st_gid) == (7, 8)


def test_read_only_rootfs_refuses(box, tmp_path):
    make, root, _ = box
    with pytest.raises(PermissionDenied, match="container rootfs is marked read-only"):
        put(tmp_path, make(readonly=True), "/tmp", f("a", b"a"))
    assert os.listdir(root / "tmp") == []


# -- bind mounts: written into their source, never past it ---------------------------------------


def test_bind_mounts_receive_what_is_copied_under_them(box, tmp_path):
    make, root, canary = box
    vol = tmp_path / "vol"
    vol.mkdir()
    os.symlink("/", vol / "toroot")  # the container made it: '/' is the container's root
    ro = tmp_path / "ro"
    ro.mkdir()
    binds = {("data",): Bind(("data",), str(vol), False), ("cfg",): Bind(("cfg",), str(ro), True)}
    put(tmp_path, make(binds=binds), "/", d("data/"), f("data/a", b"vol"), f("data/toroot/etc/x", b"root"))
    assert (vol / "a").read_bytes() == b"vol"
    assert (root / "etc" / "x").read_bytes() == b"root"
    assert not (root / "data").exists()  # the mount point itself is not needed
    put(tmp_path, make(binds=binds), "/data", f("b", b"b"))
    assert (vol / "b").read_bytes() == b"b"
    with pytest.raises(PermissionDenied, match="mounted volume is marked read-only"):
        put(tmp_path, make(binds=binds), "/", f("cfg/x", b"x"))
    with pytest.raises(PermissionDenied):
        put(tmp_path, make(binds=binds), "/cfg", f("x", b"x"))
    with pytest.raises(PermissionDenied):
        put(tmp_path, make(binds=binds), "/", f("cfg/new/x", b"x"))
    assert os.listdir(ro) == []
    assert_canary_intact(canary)


def test_a_file_bind_mount_point_is_not_replaced(box, tmp_path):
    make, root, _ = box
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    binds = {("etc", "hosts"): Bind(("etc", "hosts"), str(hosts), False)}
    with pytest.raises(InvalidArgument, match="mount point"):
        put(tmp_path, make(binds=binds), "/etc", f("hosts", b"evil"))
    assert hosts.read_text() == "127.0.0.1 localhost\n"


@pytest.mark.parametrize(("entries", "why"), [
    ((f("n" * 300, b"x"),), "File name too long"),
    ((f("etc/passwd/x", b"x"),), "is not a directory"),  # the container's /etc/passwd is a file
])
def test_entries_the_container_cannot_take_are_invalid_argument_naming_them(box, tmp_path, entries, why):
    make, root, _ = box
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    name = entries[0][0].name
    with pytest.raises(InvalidArgument, match=f"archive entry '{name}'.*({why})"):
        put(tmp_path, make(), "/", *entries)


def test_an_io_failure_while_writing_is_a_server_error(box, tmp_path, monkeypatch):
    make, root, _ = box

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(ut, "write_file", broken)
    with pytest.raises(Internal, match="writing archive entry 'a' failed"):
        put(tmp_path, make(), "/tmp", f("a", b"x"))
