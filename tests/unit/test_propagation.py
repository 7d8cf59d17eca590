"""dockerd's check of bind propagation against the host's mounts (engine/containers/propagation.py)."""
from __future__ import annotations

import pytest

from engine.containers.mounts import bind_propagations
from engine.containers.propagation import check, parse, source_mount
from engine.errors import InvalidArgument

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:5 / /mnt rw - tmpfs tmpfs rw
31 30 0:6 / /mnt/shared rw shared:7 - tmpfs tmpfs rw
32 30 0:7 / /mnt/slave rw master:7 - tmpfs tmpfs rw
33 30 0:8 / /mnt/with\\040space rw - tmpfs tmpfs rw
34 31 0:9 / /mnt/shared rw - tmpfs tmpfs rw
"""


def test_the_mount_a_path_sits_on() -> None:
    mounts = parse(MOUNTINFO)
    assert [m.path for m in mounts][-2:] == ["/mnt/with space", "/mnt/shared"]
    assert source_mount("/etc/hosts", mounts).path == "/"  # type: ignore[union-attr]
    assert source_mount("/mnt/sharedx", mounts).path == "/mnt"  # type: ignore[union-attr]
    # Stacked mounts: the last one is the one a path resolves through.
    assert source_mount("/mnt/shared/a", mounts).optional == ()  # type: ignore[union-attr]
    assert source_mount("/mnt/slave/a", mounts).optional == ("master:7",)  # type: ignore[union-attr]


@pytest.mark.parametrize("source, propagation, message", [
    ("/mnt/x", "rshared", "path /mnt/x is mounted on /mnt but it is not a shared mount"),
    ("/mnt/slave/", "shared", "path /mnt/slave is mounted on /mnt/slave but it is not a shared mount"),
    ("/mnt/x", "rslave", "path /mnt/x is mounted on /mnt but it is not a shared or slave mount"),
    ("/mnt/with space/d", "slave", "path /mnt/with space/d is mounted on /mnt/with space but it is not a shared "
                                   "or slave mount"),
])
def test_refused_as_dockerd_refuses(source: str, propagation: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{message}$"):
        check([(source, propagation)], parse(MOUNTINFO))


def test_accepted() -> None:
    check([("/etc", "rshared"), ("/mnt/slave/a", "rslave"), ("/etc", "slave"), ("/mnt/x", "rprivate"),
           ("/mnt/x", "private")], parse(MOUNTINFO))


def test_which_binds_ask() -> None:
    assert bind_propagations(["/a:/b:ro,rshared", "vol:/c:rslave", "/d:/e"],
                             [{"Type": "bind", "Source": "/f", "Target": "/g", "BindOptions": {"Propagation": "slave"}},
                              {"Type": "volume", "Source": "v", "Target": "/h"}]) == [("/a", "rshared"), ("/f", "slave")]
