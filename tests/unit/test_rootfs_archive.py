"""Reading a container's files (runtime.rootfs.archive) and its changes (runtime.rootfs.changes)."""
import io
import os
import stat
import tarfile

import pytest

from runtime.errors import InvalidArgument, NotFound
from runtime.rootfs.archive import base_name, go_mode, rfc3339, stat_path, write_export, write_path
from runtime.rootfs.changes import Kind, overlay_changes, report, tree_changes
from runtime.rootfs.view import Bind, Rootfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts and trusted xattrs need root")


@pytest.fixture
def box(tmp_path):
    """(rootfs factory, root dir) with a small tree and a canary dir outside the root."""
    (tmp_path / "host-secret").write_text("host")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.chmod(root / "etc" / "passwd", 0o644)
    os.chmod(root / "etc", 0o755)
    (root / "data").mkdir()
    (root / "data" / "a").write_text("a")
    os.link(root / "data" / "a", root / "data" / "b")
    os.symlink("../etc/../etc/passwd", root / "data" / "pw")
    os.symlink("/", root / "data" / "up")
    os.symlink(str(tmp_path), root / "data" / "host")
    opened = []

    def make(binds=None):
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        opened.append(fd)
        return Rootfs(key=("ns", "c1"), fd=fd, readonly=False, owner=(0, 0), binds=binds or {})

    yield make, root
    for fd in opened:
        os.close(fd)


def tar_of(fn, *args) -> tarfile.TarFile:
    buf = io.BytesIO()
    fn(*args, buf)
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def test_go_file_modes_and_times():
    assert go_mode(stat.S_IFDIR | 0o755) == 2147484141
    assert go_mode(stat.S_IFREG | 0o644) == 420
    assert go_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert go_mode(stat.S_IFCHR | 0o600) == (1 << 26) | (1 << 21) | 0o600
    assert rfc3339(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert rfc3339(1_700_000_000_500_000_000) == "2023-11-14T22:13:20.5Z"
    assert [base_name(p) for p in ("/etc/passwd", "/etc/", "/etc/.", "/", "")] == ["passwd", "etc", ".", "/", "/"]


def test_stat_resolves_symlinks_inside_the_root(box):
    make, root = box
    st = stat_path(make(), "/etc/passwd")
    assert (st.name, st.size, st.mode) == ("passwd", 26, 420)
    assert stat_path(make(), "/etc").mode == 2147484141
    link = stat_path(make(), "/data/pw")
    assert link.mode & (1 << 27) and link.link_target == "/etc/passwd"
    assert link.model_dump()["linkTarget"] == "/etc/passwd"
    assert stat_path(make(), "/data/up").link_target == "/"
    assert stat_path(make(), "/data/host").link_target == str(box[1].parent)  # a path inside the root
    assert stat_path(make(), "/data/up/").mode == 2147484141  # followed: the container's root
    with pytest.raises(NotFound):
        stat_path(make(), "/data/host/host-secret")  # the host's file is not reachable
    with pytest.raises(NotFound):
        stat_path(make(), "/nope")
    with pytest.raises(InvalidArgument, match="not a directory"):
        stat_path(make(), "/etc/passwd/")
    for weird in ("/etc/\0", "/" + "x" * 300, "/etc/" + "y/" * 3000):
        with pytest.raises((InvalidArgument, NotFound)):
            stat_path(make(), weird)


def test_tar_of_a_directory_a_file_and_a_symlink(box):
    make, _ = box
    tar = tar_of(write_path, make(), "/data")
    names = tar.getnames()
    assert names == ["data", "data/a", "data/b", "data/host", "data/pw", "data/up"]
    assert tar.getmember("data/b").islnk() and tar.getmember("data/b").linkname == "data/a"
    assert tar.getmember("data/up").issym()  # never followed inside a tree
    assert tar_of(write_path, make(), "/data/.").getnames()[:2] == [".", "./a"]
    assert tar_of(write_path, make(), "/etc/passwd").extractfile("passwd").read().startswith(b"root:")
    assert tar_of(write_path, make(), "/data/pw").getmember("pw").issym()
    followed = tar_of(write_path, make(), "/data/up/")
    assert "up/etc/passwd" in followed.getnames()  # the container's root, named as asked for


def test_binds_are_in_a_copy_but_not_in_an_export(box, tmp_path):
    make, root = box
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "v").write_text("v")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    binds = {("mnt",): Bind(("mnt",), str(vol), False), ("etc", "hosts"): Bind(("etc", "hosts"), str(hosts), True)}
    tar = tar_of(write_path, make(binds), "/")
    assert {"/mnt", "/mnt/v", "/etc/hosts"} <= set(tar.getnames())  # named from the root, as dockerd names them
    assert tar.extractfile("/etc/hosts").read() == b"127.0.0.1 localhost\n"
    assert stat_path(make(binds), "/mnt/v").size == 1
    export = tar_of(write_export, make(binds))
    names = export.getnames()
    assert "etc/passwd" in names and "data/a" in names
    assert not [n for n in names if n.startswith(("mnt", "/", "etc/hosts"))]


# -- changes -------------------------------------------------------------------------------


def _whiteout(path):
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def test_overlay_changes_from_upper_and_lowers(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("etc", "var/log", "opq/old", "tmp"):
        (lower / d).mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("p")
    (lower / "etc" / "gone").write_text("g")
    (lower / "var" / "log" / "x").write_text("x")
    (lower / "opq" / "keepname").write_text("k")
    os.chmod(lower / "tmp", 0o1777)
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "passwd").write_text("changed")
    _whiteout(upper / "etc" / "gone")
    (upper / "etc" / "hostname").write_text("runc made me")  # a mount point: hidden
    (upper / "new" / "deep").mkdir(parents=True)
    (upper / "new" / "deep" / "f").write_text("f")
    (upper / "opq").mkdir()
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    (upper / "opq" / "keepname").write_text("new")
    (upper / "tmp").mkdir()
    os.chmod(upper / "tmp", 0o1777)  # copied up, same metadata (mtime too, as overlayfs copies it): no change by itself
    _same_times(lower / "tmp", upper / "tmp")
    found = overlay_changes(str(upper), [str(lower)], set())
    out = [(c.path, int(c.kind)) for c in report(found, {"/etc/hostname"})]
    assert out == [
        ("/etc", 0), ("/etc/gone", 2), ("/etc/passwd", 0),
        ("/new", 1), ("/new/deep", 1), ("/new/deep/f", 1),
        ("/opq", 0), ("/opq/keepname", 0), ("/opq/old", 2),
    ]


def _same_times(src, dst) -> None:
    st = os.lstat(src)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def test_overlay_changes_as_moby_compares_entries(tmp_path):
    """A directory's mtime is its own change (not above a mount point, where runc makes mount points); a file copied
    up as it was is none."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("usr", "etc", "data"):
        (lower / d).mkdir(parents=True)
    (lower / "data" / "same").write_text("s")
    (lower / "data" / "touched").write_text("t")
    for d in ("usr", "etc", "data"):
        (upper / d).mkdir(parents=True)
    os.utime(upper / "usr", (946684800, 946684800))  # `touch -d 2000-01-01 /usr`
    (upper / "etc" / "hostname").write_text("")  # runc's mount point: /etc's mtime moved by it alone
    (upper / "data" / "same").write_text("s")
    _same_times(lower / "data" / "same", upper / "data" / "same")  # `: >> same`: copied up, unchanged
    (upper / "data" / "touched").write_text("t")
    os.utime(upper / "data" / "touched", (946684800, 946684800))
    _same_times(lower / "data", upper / "data")
    found = overlay_changes(str(upper), [str(lower)], {("etc", "hostname")})
    assert [(c.path, c.kind) for c in report(found, {"/etc/hostname"})] == [
        ("/data", Kind.MODIFIED), ("/data/touched", Kind.MODIFIED), ("/usr", Kind.MODIFIED)]


def test_tree_changes_against_the_parent_copy(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    (old / "etc").mkdir(parents=True)
    (old / "etc" / "passwd").write_text("p")
    (old / "etc" / "gone").write_text("g")
    (old / "bin").mkdir()
    os.system(f"cp -a {old} {new}")
    (new / "etc" / "gone").unlink()
    (new / "etc" / "passwd").write_text("changed!")
    (new / "tmp").mkdir()
    (new / "tmp" / "x").write_text("x")
    out = [(c.path, c.kind) for c in report(tree_changes(str(new), str(old), set()), set())]
    assert out == [("/etc", Kind.MODIFIED), ("/etc/gone", Kind.DELETED), ("/etc/passwd", Kind.MODIFIED),
                   ("/tmp", Kind.ADDED), ("/tmp/x", Kind.ADDED)]
    assert [c.path for c in report(tree_changes(str(new), None, set()), set())] == \
        ["/bin", "/etc", "/etc/passwd", "/tmp", "/tmp/x"]
