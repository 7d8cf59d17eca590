import errno
import os

import pytest

from runtime import mount
from runtime.errors import InvalidArgument
from runtime.mount import Mount
from tests.unit.mounts import mounted_under

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


@pytest.fixture(autouse=True)
def _no_leftovers(no_leftover_mounts):
    yield


def test_parse_options_splits_flags_propagation_and_data():
    p = mount.parse_options(["rbind", "ro", "nosuid", "rprivate", "lowerdir=/a:/b", "index=off"])
    assert p.flags == mount.MS_BIND | mount.MS_REC | mount.MS_RDONLY | mount.MS_NOSUID
    assert p.propagation == mount.MS_PRIVATE | mount.MS_REC
    assert p.data == "lowerdir=/a:/b,index=off"
    # later options win, like mount(8)
    assert mount.parse_options(["ro", "rw"]).flags & mount.MS_RDONLY == 0


def test_bind_ro_mount_and_unmount(tmp_path):
    src, target = tmp_path / "src", tmp_path / "target"
    src.mkdir()
    target.mkdir()
    (src / "f").write_text("hello")
    mount.mount_all([Mount(type="bind", source=str(src), options=["rbind", "ro"])], str(target))
    try:
        assert mount.is_mountpoint(str(target))
        assert (target / "f").read_text() == "hello"
        with pytest.raises(OSError) as exc:
            (target / "g").write_text("nope")
        assert exc.value.errno == errno.EROFS
    finally:
        mount.unmount(str(target))
    assert not mount.is_mountpoint(str(target))
    assert not (src / "g").exists()


def test_unmount_removes_stacked_mounts_and_is_idempotent(tmp_path):
    a, b, target = tmp_path / "a", tmp_path / "b", tmp_path / "target"
    for d in (a, b, target):
        d.mkdir()
    (b / "top").touch()
    mount.mount_all(
        [Mount(type="bind", source=str(a), options=["rbind"]), Mount(type="none", source=str(b), options=["bind"])],
        str(target),
    )
    assert os.listdir(target) == ["top"]
    mount.unmount(str(target))
    assert not mount.is_mountpoint(str(target))
    mount.unmount(str(target))  # nothing mounted: no error


def test_failed_mount_undoes_earlier_ones(tmp_path):
    a, target = tmp_path / "a", tmp_path / "target"
    a.mkdir()
    target.mkdir()
    with pytest.raises(InvalidArgument):
        mount.mount_all(
            [
                Mount(type="bind", source=str(a), options=["rbind"]),
                Mount(type="bind", source=str(tmp_path / "missing"), options=["rbind"]),
            ],
            str(target),
        )
    assert not mount.is_mountpoint(str(target))


def test_unmount_all_under_unmounts_nested(tmp_path):
    src, base = tmp_path / "src", tmp_path / "base"
    src.mkdir()
    (src / "inner").mkdir()
    base.mkdir()
    mount.mount_all([Mount(type="bind", source=str(src), options=["rbind"])], str(base))
    mount.mount_all([Mount(type="bind", source=str(src), options=["rbind"])], str(base / "inner"))
    assert len(mounted_under(str(base))) == 2
    mount.unmount_all_under(str(tmp_path))
    assert mounted_under(str(base)) == []


def test_mounted_context_manager_cleans_up(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").touch()
    with mount.mounted([Mount(type="bind", source=str(src), options=["rbind"])], str(tmp_path)) as target:
        assert os.listdir(target) == ["f"]
    assert not os.path.exists(target)


def _overlay_with_many_lowers(tmp_path, count: int, name_len: int) -> tuple[list[str], str, Mount]:
    # A long absolute prefix shared by all layers, so only the relative fallback fits.
    layers = tmp_path / ("p" * 200) / ("q" * 40)
    lowers = []
    for i in range(count):
        d = layers / (f"{i:03d}" + "x" * name_len)
        d.mkdir(parents=True)
        (d / f"file{i}").touch()
        lowers.append(str(d))
    upper, work, merged = layers / "upper", layers / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    m = Mount(
        type="overlay",
        source="overlay",
        options=[f"workdir={work}", f"upperdir={upper}", "lowerdir=" + ":".join(lowers)],
    )
    return lowers, str(merged), m


def test_overlay_lowerdir_longer_than_a_page_uses_relative_paths(tmp_path):
    lowers, merged, m = _overlay_with_many_lowers(tmp_path, 100, 0)
    assert len(",".join(m.options)) > 4096
    cwd = os.getcwd()
    mount.mount_all([m], merged)
    try:
        assert sorted(os.listdir(merged)) == sorted(f"file{i}" for i in range(100))
    finally:
        mount.unmount(merged)
    assert os.getcwd() == cwd  # the chdir happened in a thread with its own cwd


def test_overlay_options_too_long_even_relative(tmp_path):
    _, merged, m = _overlay_with_many_lowers(tmp_path, 100, 60)
    with pytest.raises(InvalidArgument, match="even with relative paths"):
        mount.mount_all([m], merged)
