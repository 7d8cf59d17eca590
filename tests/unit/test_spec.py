"""OCI spec generation: the process as given, Docker's defaults and the host-limit checks."""
from __future__ import annotations

import json
import os
import resource
import stat
from pathlib import Path
from typing import Any

import pytest

from runtime import sysinfo
from runtime.errors import FailedPrecondition, InvalidArgument
from runtime.tasks import (
    cgroups,
    seccomp,
    spec,
    spec_process,
    spec_resources,
    spec_security,
    start_user,
)
from runtime.tasks.spec import generate
from runtime.tasks.spec_options import SpecMount, SpecOptions, Ulimit
from runtime.tasks.spec_security import DEFAULT_CAPABILITIES
from runtime.tasks.users import read_rootfs_file, resolve_user

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "www:x:33:33:www:/var/www:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
# Kept before the autouse fixture below replaces it.
REAL_HOST_CAPABILITIES = spec.host_capabilities
GROUP = "root:x:0:\nwheel:x:10:root\nwww:x:33:\nstaff:x:50:www,daemon\n100:x:200:\nnogroup:x:65534:\n"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    return root


@pytest.fixture(autouse=True)
def stable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make host-dependent answers fixed so the tables below hold on any machine."""
    monkeypatch.setattr(spec, "host_capabilities", lambda: list(spec_security.CAPABILITIES))
    monkeypatch.setattr(spec_resources.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(cgroups, "detect_mode", lambda: cgroups.CgroupMode.V1)
    monkeypatch.setattr(cgroups, "swap_limit_supported", lambda: True)


def gen(rootfs: Path, cid: str = "0123456789abcdef0123", **kw: Any) -> dict[str, Any]:
    kw.setdefault("args", ["sh"])
    opts = SpecOptions(**kw)
    return generate(resolve_user(str(rootfs), opts.user, opts.additional_gids), cid, "default", opts)


# --- the process, taken as given ------------------------------------------------------


def test_args_are_taken_as_given(rootfs: Path) -> None:
    assert gen(rootfs, args=["/entry.sh", "serve", "--port", "80"])["process"]["args"] == [
        "/entry.sh", "serve", "--port", "80"]


@pytest.mark.parametrize("args", [None, []])
def test_no_command_is_invalid(rootfs: Path, args: list[str] | None) -> None:
    with pytest.raises(InvalidArgument, match="^no command specified$"):
        gen(rootfs, args=args)


def test_an_empty_program_name_is_left_to_runc(rootfs: Path) -> None:
    # Docker accepts `Cmd: [""]` at create; the failure is runc's, when the task is made.
    assert gen(rootfs, args=[""])["process"]["args"] == [""]


def test_spec_options_know_no_image_config() -> None:
    """Entrypoint and Cmd are the client's to merge (the engine's plan, pyctr's imageconfig)."""
    assert not {"entrypoint", "cmd"} & set(SpecOptions.model_fields)
    with pytest.raises(ValueError, match="entrypoint"):
        SpecOptions(args=["sh"], entrypoint=["/bin/sh"])


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({}, [f"PATH={spec_process.DEFAULT_PATH}", "HOSTNAME=0123456789ab", "HOME=/root"]),
        ({"env": ["PATH=/opt/bin", "LANG=C"]}, ["PATH=/opt/bin", "HOSTNAME=0123456789ab", "LANG=C", "HOME=/root"]),
        # What pyctr sends: the image's Env, then its --env; a later value wins by key, keeping its place.
        ({"env": ["LANG=C", "A=1", "A=2", "B=3"]},
         [f"PATH={spec_process.DEFAULT_PATH}", "HOSTNAME=0123456789ab", "LANG=C", "A=2", "B=3", "HOME=/root"]),
        ({"env": ["LANG=C", "LANG"]}, [f"PATH={spec_process.DEFAULT_PATH}", "HOSTNAME=0123456789ab", "HOME=/root"]),
        ({"tty": True, "env": ["HOME=/tmp"]},
         [f"PATH={spec_process.DEFAULT_PATH}", "HOSTNAME=0123456789ab", "TERM=xterm", "HOME=/tmp"]),
        ({"tty": True, "env": ["TERM=vt100"]},
         [f"PATH={spec_process.DEFAULT_PATH}", "HOSTNAME=0123456789ab", "TERM=vt100", "HOME=/root"]),
        ({"hostname": "web", "env": ["X=a=b"]},
         [f"PATH={spec_process.DEFAULT_PATH}", "HOSTNAME=web", "X=a=b", "HOME=/root"]),
        ({"user": "www"}, [f"PATH={spec_process.DEFAULT_PATH}", "HOSTNAME=0123456789ab", "HOME=/var/www"]),
    ],
)
def test_env_over_the_runtime_defaults(rootfs: Path, kw: dict[str, Any], expected: list[str]) -> None:
    assert gen(rootfs, **kw)["process"]["env"] == expected


def test_the_user_is_resolved_again_at_start(rootfs: Path) -> None:
    s = gen(rootfs, user="www")
    annotation = s["annotations"][start_user.ANNOTATION]
    (rootfs / "etc/passwd").write_text(PASSWD.replace("www:x:33:33:www:/var/www", "www:x:777:50:www:/srv"))
    process = dict(s["process"])
    start_user.apply(process, str(rootfs), annotation)
    assert process["user"] == {"uid": 777, "gid": 50, "additionalGids": [50]}
    assert process["env"][-1] == "HOME=/srv" and s["process"]["user"]["uid"] == 33
    # A HOME the container names stays; a user gone since create is refused as at create.
    given = gen(rootfs, user="www", env=["HOME=/mine"])
    process = dict(given["process"])
    start_user.apply(process, str(rootfs), given["annotations"][start_user.ANNOTATION])
    assert "HOME=/mine" in process["env"] and "HOME=/srv" not in process["env"]
    (rootfs / "etc/passwd").write_text(PASSWD.replace("www:x:33:33:www:/var/www:/bin/false\n", ""))
    with pytest.raises(InvalidArgument, match="unable to find user www"):
        start_user.apply(dict(s["process"]), str(rootfs), annotation)


def test_invalid_env_entry(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument):
        gen(rootfs, env=["=x"])


def test_cwd(rootfs: Path) -> None:
    assert gen(rootfs)["process"]["cwd"] == "/"
    assert gen(rootfs, cwd="/tmp")["process"]["cwd"] == "/tmp"
    with pytest.raises(InvalidArgument, match="absolute"):
        gen(rootfs, cwd="rel")


# --- users ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user, groups, expected",
    [
        (None, [], (0, 0, [0, 10], "/root")),
        ("", [], (0, 0, [0, 10], "/root")),
        ("root", [], (0, 0, [0, 10], "/root")),
        ("www", [], (33, 33, [33, 50], "/var/www")),
        ("33", [], (33, 33, [33, 50], "/var/www")),
        ("4242", [], (4242, 0, [0], "/")),
        ("4242:4343", [], (4242, 4343, [4343], "/")),
        ("0:0:0", [], (0, 0, [0], "/root")),  # libcontainer reads the first two fields, ignores the rest
        ("www:staff", [], (33, 50, [50], "/var/www")),
        ("www:0", [], (33, 0, [0], "/var/www")),
        ("nobody:100", [], (65534, 200, [200], "/nonexistent")),  # a group named "100" wins over gid 100
        ("daemon", ["wheel", 7], (1, 1, [1, 50, 10, 7], "/usr/sbin")),
    ],
)
def test_resolve_user(rootfs: Path, user: str | None, groups: list[str | int],
                      expected: tuple[int, int, list[int], str]) -> None:
    u = resolve_user(str(rootfs), user, groups)
    assert (u.uid, u.gid, u.additional_gids, u.home) == expected


def test_unknown_user_and_group(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match="^unable to find user bob: no matching entries in passwd file$"):
        resolve_user(str(rootfs), "bob")
    with pytest.raises(InvalidArgument, match="unable to find group ops"):
        resolve_user(str(rootfs), "www:ops")
    with pytest.raises(InvalidArgument, match="^Unable to find group ops"):
        resolve_user(str(rootfs), "www", ["ops"])
    for user in ("4294967296", "-1"):
        with pytest.raises(InvalidArgument, match="^uids and gids must be in range 0-2147483647$"):
            resolve_user(str(rootfs), user)


def test_user_default_and_given(rootfs: Path) -> None:
    assert gen(rootfs)["process"]["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}
    assert gen(rootfs, user="www")["process"]["user"] == {"uid": 33, "gid": 33, "additionalGids": [33, 50]}
    assert gen(rootfs, user="0:0")["process"]["user"]["uid"] == 0


def test_no_passwd_file(tmp_path: Path) -> None:
    assert resolve_user(str(tmp_path), "1000").uid == 1000
    with pytest.raises(InvalidArgument, match="unable to find user root"):
        resolve_user(str(tmp_path), "root")


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../../../etc/passwd", "/proc/self/root/etc/passwd"])
def test_passwd_symlink_out_of_rootfs_is_not_followed(tmp_path: Path, target: str) -> None:
    root = tmp_path / "evil"
    (root / "etc").mkdir(parents=True)
    os.symlink(target, root / "etc/passwd")
    assert read_rootfs_file(str(root), "/etc/passwd") is None
    # The host's passwd certainly names root; the image's (unreadable) one does not.
    with pytest.raises(InvalidArgument, match="unable to find user root"):
        resolve_user(str(root), "root")


def test_etc_dir_symlink_out_of_rootfs_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "evil"
    root.mkdir()
    os.symlink("/etc", root / "etc")
    assert read_rootfs_file(str(root), "/etc/passwd") is None
    with pytest.raises(InvalidArgument, match="unable to find user root"):
        resolve_user(str(root), "root")


def test_symlinks_inside_rootfs_resolve_against_it(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "data").mkdir(parents=True)
    (root / "data/passwd").write_text("app:x:900:901::/home/app:/bin/sh\n")
    os.symlink("/data", root / "etc")  # absolute: the rootfs's /data, not the host's
    assert resolve_user(str(root), "app").uid == 900
    os.unlink(root / "etc")
    (root / "etc").mkdir()
    os.symlink("../../../data/passwd", root / "etc/passwd")  # `..` stops at the rootfs
    assert resolve_user(str(root), "app").gid == 901


def test_passwd_that_is_not_a_regular_file(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc/passwd")  # must not block
    assert read_rootfs_file(str(root), "/etc/passwd") is None


# --- capabilities --------------------------------------------------------------------

DEFAULT = list(DEFAULT_CAPABILITIES)


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({}, DEFAULT),
        ({"cap_add": ["net_admin"]}, DEFAULT + ["CAP_NET_ADMIN"]),
        ({"cap_add": ["CAP_SYS_PTRACE", "sys_ptrace"]}, DEFAULT + ["CAP_SYS_PTRACE"]),
        ({"cap_drop": ["chown", "CAP_KILL"]}, [c for c in DEFAULT if c not in ("CAP_CHOWN", "CAP_KILL")]),
        ({"cap_drop": ["all"]}, []),
        ({"cap_drop": ["ALL"], "cap_add": ["NET_BIND_SERVICE"]}, ["CAP_NET_BIND_SERVICE"]),
        ({"cap_add": ["all"]}, list(spec_security.CAPABILITIES)),
        ({"cap_add": ["ALL"], "cap_drop": ["SYS_ADMIN"]},
         [c for c in spec_security.CAPABILITIES if c != "CAP_SYS_ADMIN"]),
        ({"cap_add": ["ALL"], "cap_drop": ["ALL"]}, list(spec_security.CAPABILITIES)),
        ({"cap_add": ["KILL"], "cap_drop": ["kill"]}, DEFAULT),  # add wins over drop
    ],
)
def test_capabilities(rootfs: Path, kw: dict[str, Any], expected: list[str]) -> None:
    caps = gen(rootfs, **kw)["process"]["capabilities"]
    assert sorted(caps["bounding"]) == sorted(expected)
    assert caps["effective"] == caps["permitted"] == caps["bounding"]
    assert caps["inheritable"] == [] and caps["ambient"] == []


def test_default_capabilities_are_dockers_set(rootfs: Path) -> None:
    assert len(DEFAULT_CAPABILITIES) == 14
    mask = sum(1 << spec_security.CAPABILITIES.index(c) for c in gen(rootfs)["process"]["capabilities"]["effective"])
    assert mask == 0xA80425FB  # CapEff of a default Docker container


@pytest.mark.parametrize("kw", [{"cap_add": ["CAP_FLY"]}, {"cap_drop": ["nope"]}, {"cap_add": [""]}])
def test_unknown_capability(rootfs: Path, kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="unknown capability"):
        gen(rootfs, **kw)


def test_capabilities_outside_the_host_bounding_set(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    available = [c for c in spec_security.CAPABILITIES if c != "CAP_SYS_RESOURCE"]
    monkeypatch.setattr(spec, "host_capabilities", lambda: available)
    with pytest.raises(InvalidArgument, match="CAP_SYS_RESOURCE"):
        gen(rootfs, cap_add=["SYS_RESOURCE"])
    assert "CAP_SYS_RESOURCE" not in gen(rootfs, cap_add=["ALL"])["process"]["capabilities"]["bounding"]
    assert gen(rootfs, privileged=True)["process"]["capabilities"]["bounding"] == available


def test_host_capabilities_match_this_process() -> None:
    with open("/proc/self/status") as fh:
        bnd = int(next(line for line in fh if line.startswith("CapBnd:")).split()[1], 16)
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    caps = REAL_HOST_CAPABILITIES()
    assert caps == [c for i, c in enumerate(spec_security.CAPABILITIES) if i <= last and bnd >> i & 1]
    assert set(DEFAULT_CAPABILITIES) <= set(caps)


# --- rlimits and oom_score_adj -------------------------------------------------------


def fake_hard_limits(monkeypatch: pytest.MonkeyPatch, nofile_hard: int) -> None:
    real = spec_process.resource.getrlimit

    def getrlimit(number: int) -> tuple[int, int]:
        return (min(1024, nofile_hard), nofile_hard) if number == spec_process._RLIMITS["nofile"] else real(number)

    monkeypatch.setattr(spec_process.resource, "getrlimit", getrlimit)


@pytest.mark.parametrize("host_hard, expected", [(20000, 20000), (4096, 4096), (2_000_000, 1048576), (-1, 1048576)])
def test_default_nofile_is_clamped_to_the_host(monkeypatch: pytest.MonkeyPatch, host_hard: int, expected: int) -> None:
    fake_hard_limits(monkeypatch, host_hard)
    assert spec_process.rlimits([]) == [{"type": "RLIMIT_NOFILE", "hard": expected, "soft": expected}]


def test_explicit_ulimits(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hard_limits(monkeypatch, 20000)
    out = spec_process.rlimits([Ulimit(name="nofile", soft=512, hard=20000),
                                Ulimit(name="RLIMIT_CORE", soft=0, hard=0)])
    assert out == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 512},
                   {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}]


def test_explicit_ulimit_above_host_hard_limit_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hard_limits(monkeypatch, 20000)
    monkeypatch.setattr(spec_process, "can_override_limits", lambda: False)
    with pytest.raises(InvalidArgument, match="above the host's hard limit 20000"):
        spec_process.rlimits([Ulimit(name="nofile", soft=1024, hard=1048576)])
    with pytest.raises(InvalidArgument, match="above the host's hard limit"):
        spec_process.rlimits([Ulimit(name="nofile", soft=-1, hard=-1)])


@pytest.mark.parametrize("ulimit, message", [
    (Ulimit(name="nofile", soft=2048, hard=1024), "greater than hard"),
    (Ulimit(name="bogus", soft=1, hard=1), "invalid ulimit type"),
    (Ulimit(name="core", soft=-5, hard=0), "negative"),
])
def test_invalid_ulimits(ulimit: Ulimit, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        spec_process.rlimits([ulimit])


def test_unlimited_ulimit_below_an_unlimited_host() -> None:
    if resource.getrlimit(resource.RLIMIT_CORE)[1] != resource.RLIM_INFINITY:
        pytest.skip("host core hard limit is finite")
    assert spec_process.rlimits([Ulimit(name="core", soft=-1, hard=-1)])[0]["hard"] == 2**64 - 1


@pytest.mark.parametrize("value", [-1, -500, -1000])
def test_lowering_oom_score_adj_needs_cap_sys_resource(rootfs: Path, monkeypatch: pytest.MonkeyPatch,
                                                       value: int) -> None:
    monkeypatch.setattr(spec_process, "can_override_limits", lambda: False)
    with pytest.raises(InvalidArgument, match="needs CAP_SYS_RESOURCE"):
        gen(rootfs, oom_score_adj=value)
    monkeypatch.setattr(spec_process, "can_override_limits", lambda: True)
    assert gen(rootfs, oom_score_adj=value)["process"]["oomScoreAdj"] == value


def test_oom_score_adj(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_process, "can_override_limits", lambda: False)
    own = int(Path("/proc/self/oom_score_adj").read_text())
    # dockerd writes 0 for every container; here only where that does not lower the runtime's own score.
    assert gen(rootfs)["process"].get("oomScoreAdj") == (0 if own <= 0 else None)
    assert gen(rootfs, oom_score_adj=1000)["process"]["oomScoreAdj"] == 1000
    for wrong in (1001, -1001):
        with pytest.raises(InvalidArgument, match=r"range for oom score adj is \[-1000, 1000\]"):
            gen(rootfs, oom_score_adj=wrong)


def test_ulimits_above_ours_with_cap_sys_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hard_limits(monkeypatch, 20000)
    monkeypatch.setattr(spec_process, "can_override_limits", lambda: True)
    out = spec_process.rlimits([Ulimit(name="nofile", soft=1024, hard=1048576)])
    assert out == [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1024}]


# --- privileged, masked paths, mounts ------------------------------------------------


def mount_at(s: dict[str, Any], dest: str) -> dict[str, Any]:
    return next(m for m in s["mounts"] if m["destination"] == dest)


def test_default_spec_shape(rootfs: Path) -> None:
    s = gen(rootfs)
    assert s["ociVersion"].startswith("1.0.2")
    assert s["root"] == {"path": "rootfs", "readonly": False}
    assert s["hostname"] == "0123456789ab"
    assert s["process"]["terminal"] is False and s["process"]["noNewPrivileges"] is False
    assert s["linux"]["maskedPaths"] == list(spec_security.MASKED_PATHS)
    assert "/proc/kcore" in s["linux"]["maskedPaths"] and "/sys/firmware" in s["linux"]["maskedPaths"]
    assert s["linux"]["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert mount_at(s, "/dev")["options"] == ["nosuid", "strictatime", "mode=755", "size=65536k"]
    assert mount_at(s, "/dev/shm")["options"] == ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]
    assert "ro" in mount_at(s, "/sys")["options"] and "ro" in mount_at(s, "/sys/fs/cgroup")["options"]
    assert [n["type"] for n in s["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert s["linux"]["cgroupsPath"] == "/pyengine/default/0123456789abcdef0123"
    devices = s["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in devices
    assert {"allow": True, "type": "c", "major": 136, "access": "rwm"} in devices
    assert s["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert list(s["annotations"]) == ["io.pyengine.user"] and "devices" not in s["linux"]
    json.dumps(s)  # must serialise as config.json


def test_masked_and_readonly_path_overrides(rootfs: Path) -> None:
    s = gen(rootfs, masked_paths=["/proc/x"], readonly_paths=[])
    assert s["linux"]["maskedPaths"] == ["/proc/x"] and s["linux"]["readonlyPaths"] == []


def test_privileged(rootfs: Path) -> None:
    s = gen(rootfs, privileged=True, cap_drop=["ALL"], masked_paths=["/proc/x"])
    assert s["process"]["capabilities"]["bounding"] == list(spec_security.CAPABILITIES)
    assert s["linux"]["maskedPaths"] == [] and s["linux"]["readonlyPaths"] == []
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "seccomp" not in s["linux"]
    assert "ro" not in mount_at(s, "/sys")["options"] and "ro" not in mount_at(s, "/sys/fs/cgroup")["options"]
    paths = {d["path"] for d in s["linux"].get("devices", [])}
    assert "/dev/null" in paths and "/dev/console" not in paths and not any(p.startswith("/dev/pts/") for p in paths)


def test_user_mount_replaces_default(rootfs: Path, tmp_path: Path) -> None:
    s = gen(rootfs, mounts=[SpecMount(type="tmpfs", source="tmpfs", destination="/dev/shm/", options=["size=1g"]),
                            SpecMount(source=str(tmp_path), destination="/data", options=["ro"])])
    assert [m["destination"] for m in s["mounts"]].count("/dev/shm") == 1
    assert mount_at(s, "/dev/shm")["options"] == ["size=1g"]
    assert mount_at(s, "/data") == {"destination": "/data", "type": "bind", "source": str(tmp_path),
                                    "options": ["ro", "rbind"]}
    assert s["mounts"][-2:] == [mount_at(s, "/data"), mount_at(s, "/dev/shm")]  # user mounts last, parents first


def test_user_dev_mount_takes_the_dev_defaults_with_it(rootfs: Path) -> None:
    s = gen(rootfs, mounts=[SpecMount(type="tmpfs", source="tmpfs", destination="/dev")])
    dests = [m["destination"] for m in s["mounts"]]
    assert dests == ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]


def test_tmpfs_shortcut(rootfs: Path) -> None:
    s = gen(rootfs, tmpfs={"/run": "", "/scratch": "size=64m,exec"})
    assert mount_at(s, "/run")["options"] == ["noexec", "nosuid", "nodev"]
    assert mount_at(s, "/scratch")["options"] == ["nosuid", "nodev", "size=64m", "exec"]


def test_a_bind_source_need_not_exist_yet(rootfs: Path) -> None:
    # As containerd's: the container's user makes it before the start (dockerd makes -v sources then).
    s = gen(rootfs, mounts=[SpecMount(source="/no/such/dir/for/sure", destination="/x")])
    assert mount_at(s, "/x")["source"] == "/no/such/dir/for/sure"


@pytest.mark.parametrize("mounts, message", [
    ([SpecMount(type="tmpfs", destination="relative")], "absolute"),
    ([SpecMount(type="tmpfs", destination="/")], "root filesystem"),
    ([SpecMount(source="rel/dir", destination="/x")], "absolute"),
    ([SpecMount(type="tmpfs", destination="/x"), SpecMount(type="tmpfs", destination="/x/")], "duplicate"),
])
def test_invalid_mounts(rootfs: Path, mounts: list[SpecMount], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        gen(rootfs, mounts=mounts)


def test_device_cgroup_rules_and_memory_policy(rootfs: Path) -> None:
    s = gen(rootfs, device_cgroup_rules=["b 7:0 r", "c *:* m"], memory_swappiness=10, oom_kill_disable=True)
    rules = s["linux"]["resources"]["devices"]
    assert rules[-2:] == [{"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"},
                          {"allow": True, "type": "c", "access": "m"}]
    assert s["linux"]["resources"]["memory"] == {"swappiness": 10, "disableOOMKiller": True}
    assert "memory" not in gen(rootfs)["linux"]["resources"]
    with pytest.raises(InvalidArgument, match="device cgroup rule"):
        gen(rootfs, device_cgroup_rules=["x 1:2 rwm"])


def test_block_io_limits_per_device(rootfs: Path) -> None:
    disk = next((d for d in ("/dev/loop0", "/dev/vda", "/dev/sda") if os.path.exists(d)), None)
    if disk is None:
        pytest.skip("no block device node on this host")
    st = os.stat(disk)
    s = gen(rootfs, block_io={"read_bps": [{"path": disk, "rate": 1 << 20}], "weight": [{"path": disk, "rate": 300}]})
    dev = {"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev)}
    assert s["linux"]["resources"]["blockIO"] == {"throttleReadBpsDevice": [{**dev, "rate": 1 << 20}],
                                                  "weightDevice": [{**dev, "weight": 300}]}
    with pytest.raises(InvalidArgument, match="not a block device"):
        gen(rootfs, block_io={"write_iops": [{"path": "/dev/null", "rate": 5}]})
    with pytest.raises(InvalidArgument, match="no such file or directory"):
        gen(rootfs, block_io={"write_iops": [{"path": "/dev/nosuchdisk", "rate": 5}]})


def test_shm_size(rootfs: Path) -> None:
    assert "size=67108864" in mount_at(gen(rootfs), "/dev/shm")["options"]
    assert "size=1048576" in mount_at(gen(rootfs, shm_size=1 << 20), "/dev/shm")["options"]


def test_ipc_host_binds_host_shm(rootfs: Path) -> None:
    s = gen(rootfs, ipc_mode="host")
    assert mount_at(s, "/dev/shm")["type"] == "bind" and mount_at(s, "/dev/shm")["source"] == "/dev/shm"
    assert "ipc" not in [n["type"] for n in s["linux"]["namespaces"]]


def test_rootfs_propagation(rootfs: Path) -> None:
    assert "rootfsPropagation" not in gen(rootfs)["linux"]
    assert gen(rootfs, rootfs_propagation="shared")["linux"]["rootfsPropagation"] == "shared"


# --- namespaces, hostname, sysctls ---------------------------------------------------


def test_hostname(rootfs: Path) -> None:
    cid = "f" * 64
    assert gen(rootfs, cid=cid)["hostname"] == "f" * 12
    assert gen(rootfs, cid=cid, hostname=cid)["hostname"] == cid  # what pyctr passes
    named = gen(rootfs, hostname="web", domainname="example.org")
    assert named["linux"]["sysctl"] == {"kernel.domainname": "example.org"} and "domainname" not in named
    with pytest.raises(InvalidArgument, match="hostname"):
        gen(rootfs, hostname="x" * 65)
    s = gen(rootfs, uts_mode="host")
    assert "hostname" not in s and "uts" not in [n["type"] for n in s["linux"]["namespaces"]]
    with pytest.raises(InvalidArgument, match="conflicting"):
        gen(rootfs, uts_mode="host", hostname="web")


def test_network_namespace(rootfs: Path) -> None:
    def net(s: dict[str, Any]) -> list[dict[str, str]]:
        return [n for n in s["linux"]["namespaces"] if n["type"] == "network"]

    assert net(gen(rootfs)) == [{"type": "network"}]
    assert net(gen(rootfs, netns="/var/run/netns/c1")) == [{"type": "network", "path": "/var/run/netns/c1"}]
    s = gen(rootfs, netns="host")
    assert net(s) == [] and s["hostname"] == os.uname().nodename
    with pytest.raises(InvalidArgument, match="netns"):
        gen(rootfs, netns="netns/c1")


def test_pid_host_and_cgroup_namespace(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "pid" not in [n["type"] for n in gen(rootfs, pid_mode="host")["linux"]["namespaces"]]
    monkeypatch.setattr(cgroups, "detect_mode", lambda: cgroups.CgroupMode.UNIFIED)
    assert {"type": "cgroup"} in gen(rootfs)["linux"]["namespaces"]
    assert {"type": "cgroup"} not in gen(rootfs, cgroupns="host")["linux"]["namespaces"]
    monkeypatch.setattr(cgroups, "detect_mode", lambda: cgroups.CgroupMode.HYBRID)
    assert {"type": "cgroup"} not in gen(rootfs)["linux"]["namespaces"]
    assert {"type": "cgroup"} in gen(rootfs, cgroupns="private")["linux"]["namespaces"]


def test_sysctls(rootfs: Path) -> None:
    ok = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20"}
    assert gen(rootfs, sysctls=ok)["linux"]["sysctl"] == ok
    with pytest.raises(InvalidArgument, match="not namespaced"):
        gen(rootfs, sysctls={"kernel.panic": "1"})
    with pytest.raises(InvalidArgument, match="network namespace"):
        gen(rootfs, netns="host", sysctls={"net.ipv4.ip_forward": "1"})
    with pytest.raises(InvalidArgument, match="IPC"):
        gen(rootfs, ipc_mode="host", sysctls={"kernel.shmmax": "1"})


def test_cgroup_parent(rootfs: Path) -> None:
    assert gen(rootfs, cid="c1", cgroup_parent="/tenants/a/")["linux"]["cgroupsPath"] == "/tenants/a/c1"
    assert gen(rootfs, cid="c1", cgroup_parent="tenants")["linux"]["cgroupsPath"] == "/tenants/c1"
    with pytest.raises(InvalidArgument):
        gen(rootfs, cgroup_parent="/a/../../etc")
    with pytest.raises(InvalidArgument, match="container id"):
        gen(rootfs, cid="../escape")


# --- resources -----------------------------------------------------------------------


@pytest.mark.parametrize("nano, quota", [(1_500_000_000, 150_000), (500_000_000, 50_000), (10_000_000, 1000),
                                         (4_000_000_000, 400_000)])
def test_nano_cpus(rootfs: Path, nano: int, quota: int) -> None:
    assert gen(rootfs, nano_cpus=nano)["linux"]["resources"]["cpu"] == {"quota": quota, "period": 100_000}


@pytest.mark.parametrize("kw, message", [
    ({"nano_cpus": 1_000_000_000, "cpu_quota": 50_000}, "conflicting"),
    ({"nano_cpus": 1_000_000_000, "cpu_period": 50_000}, "conflicting"),
    ({"nano_cpus": 5_000_000_000}, "only 4 CPUs"),
    ({"nano_cpus": 1_000_000}, "0.01"),
    ({"cpu_quota": 10}, "1ms"),
    ({"cpu_period": 10}, "cpu_period"),
    ({"cpuset_cpus": "0-2,x"}, "cpuset"),
    ({"cpuset_cpus": "0,7"}, "not available"),
    ({"blkio_weight": 5}, "blkio_weight"),
])
def test_invalid_cpu_and_io(rootfs: Path, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        gen(rootfs, **kw)


def test_cpu_and_pids(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysinfo, "probe", lambda: sysinfo.HostFeatures(cgroup_version="1", blkio_weight=True))
    res = gen(rootfs, cpu_shares=512, cpu_quota=20_000, cpu_period=50_000, cpuset_cpus="0-1,3", pids_limit=100,
              blkio_weight=300)["linux"]["resources"]
    assert res["cpu"] == {"shares": 512, "quota": 20_000, "period": 50_000, "cpus": "0-1,3"}
    assert res["pids"] == {"limit": 100} and res["blockIO"] == {"weight": 300}
    assert "pids" not in gen(rootfs, pids_limit=-1)["linux"]["resources"]
    monkeypatch.setattr(sysinfo, "probe", lambda: sysinfo.HostFeatures(cgroup_version="1"))
    with pytest.raises(InvalidArgument, match="cannot weigh block I/O"):
        gen(rootfs, blkio_weight=300)


def test_memory(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mib = 1024 * 1024
    assert gen(rootfs, memory=64 * mib)["linux"]["resources"]["memory"] == {"limit": 64 * mib, "swap": 128 * mib}
    assert gen(rootfs, memory=64 * mib, memory_swap=-1, memory_reservation=32 * mib)["linux"]["resources"][
        "memory"] == {"limit": 64 * mib, "reservation": 32 * mib, "swap": -1}
    assert "memory" not in gen(rootfs)["linux"]["resources"]
    for kw, message in [({"memory": mib}, "6MB"), ({"memory_swap": 100 * mib}, "memory limit"),
                        ({"memory": 64 * mib, "memory_swap": 32 * mib}, "larger than memory"),
                        ({"memory": 64 * mib, "memory_reservation": 65 * mib}, "reservation")]:
        with pytest.raises(InvalidArgument, match=message):
            gen(rootfs, **kw)
    monkeypatch.setattr(cgroups, "swap_limit_supported", lambda: False)
    assert gen(rootfs, memory=64 * mib)["linux"]["resources"]["memory"] == {"limit": 64 * mib}
    with pytest.raises(InvalidArgument, match="swap"):
        gen(rootfs, memory=64 * mib, memory_swap=128 * mib)


def test_user_devices(rootfs: Path) -> None:
    s = gen(rootfs, devices=["/dev/null:/dev/mynull:rw", "/dev/zero"])
    nodes = {d["path"]: d for d in s["linux"]["devices"]}
    mynull = nodes["/dev/mynull"]
    assert (mynull["type"], mynull["major"], mynull["minor"]) == ("c", 1, 3) and "/dev/zero" in nodes
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in s["linux"]["resources"]["devices"]
    with pytest.raises(InvalidArgument, match="not a device"):
        gen(rootfs, devices=["/etc/hostname"])
    with pytest.raises(InvalidArgument, match="device"):
        gen(rootfs, devices=["/dev/null:/a:/b:rw"])
    # A directory brings every device node below it, as dockerd takes `--device /dev/snd`.
    tree = rootfs.parent / "devtree"
    (tree / "sub").mkdir(parents=True)
    os.mknod(tree / "sub" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (tree / "link").symlink_to("/dev/zero")
    under = {d["path"]: d for d in gen(rootfs, devices=[f"{tree}:/dev/tree"])["linux"]["devices"]}
    assert list(under) == ["/dev/tree/sub/null"] and under["/dev/tree/sub/null"]["minor"] == 3
    with pytest.raises(InvalidArgument, match="not a device"):
        gen(rootfs, devices=[str(rootfs)])


# --- seccomp -------------------------------------------------------------------------


def allowed(profile: dict[str, Any]) -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r for n in r["names"]}


def test_default_seccomp_profile() -> None:
    p = seccomp.default_profile("x86_64", DEFAULT_CAPABILITIES)
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = allowed(p)
    for needed in ("read", "write", "execve", "openat", "fork", "wait4", "rt_sigaction", "arch_prctl", "chroot",
                   "accept4", "epoll_wait", "sendfile", "futex", "exit_group", "getdents64"):
        assert needed in names, needed
    for blocked in ("mount", "unshare", "setns", "reboot", "init_module", "kexec_load", "keyctl", "bpf", "clone3"):
        assert blocked not in names, blocked
    clone = next(r for r in p["syscalls"] if r["names"] == ["clone"])
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    assert next(r for r in p["syscalls"] if r["names"] == ["clone3"])["errnoRet"] == 38
    assert any(r["names"] == ["socket"] and r["args"][0]["op"] == "SCMP_CMP_NE" for r in p["syscalls"])


def test_seccomp_follows_capabilities_and_arch() -> None:
    p = seccomp.default_profile("aarch64", [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    names = allowed(p)
    assert {"mount", "unshare", "clone", "clone3"} <= names and "arch_prctl" not in names and "set_tls" in names
    assert p["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert not any(r["names"] == ["clone3"] and r["action"] == "SCMP_ACT_ERRNO" for r in p["syscalls"])
    assert "chroot" not in allowed(seccomp.default_profile("x86_64", []))
    # Docker's: another process's fds, comparisons and memory advice need CAP_SYS_PTRACE; userfaultfd and
    # pivot_root no capability unlocks.
    assert not {"kcmp", "pidfd_getfd", "process_madvise", "userfaultfd", "pivot_root"} & names
    traced = allowed(seccomp.default_profile("x86_64", [*DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE", "CAP_SYS_ADMIN"]))
    assert {"kcmp", "pidfd_getfd", "process_madvise", "ptrace"} <= traced
    assert not {"userfaultfd", "pivot_root"} & traced
    with pytest.raises(InvalidArgument, match="architecture"):
        seccomp.default_profile("riscv64", [])


def test_seccomp_options(rootfs: Path, tmp_path: Path) -> None:
    assert "seccomp" not in gen(rootfs, seccomp="unconfined")["linux"]
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["reboot"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_BOOT"]}},
        {"name": "ptrace", "action": "SCMP_ACT_KILL", "includes": {"minKernel": "99.0"}}]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    expected = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, {"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]}
    assert gen(rootfs, seccomp=str(path))["linux"]["seccomp"] == expected
    assert gen(rootfs, seccomp=json.dumps(profile))["linux"]["seccomp"] == expected
    # An explicit profile still applies to a privileged container.
    assert gen(rootfs, seccomp=str(path), privileged=True)["linux"]["seccomp"]["syscalls"] == expected["syscalls"][:1]
    both = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "mkdir", "names": ["rmdir"],
                                                             "action": "SCMP_ACT_ERRNO"}]}
    for bad in (str(tmp_path / "missing.json"), "{not json", json.dumps(both), '{"syscalls": 1}'):
        with pytest.raises(InvalidArgument):
            gen(rootfs, seccomp=bad)
    # As Docker reads it: a profile with neither a default action nor rules is no filter.
    assert "seccomp" not in gen(rootfs, seccomp="{}")["linux"]


# --- cgroups -------------------------------------------------------------------------

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:39 / /sys/fs/cgroup/other rw,relatime - cgroup cgroup rw,xattr,name=other
43 31 0:40 / /sys/fs/cgroup/misc rw,relatime - cgroup cgroup rw,misc
50 22 0:32 / /mnt/elsewhere rw,relatime - cgroup cgroup rw,memory
"""
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


def test_parse_mountinfo() -> None:
    mode, hs = cgroups._parse_mountinfo(HYBRID)
    assert mode is cgroups.CgroupMode.HYBRID
    assert [h.mountpoint for h in hs] == ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory",
                                          "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]
    assert hs[0].controllers == {"cpu", "cpuacct"}
    assert cgroups._parse_mountinfo(HYBRID.replace("cgroup2 cgroup2", "tmpfs tmpfs"))[0] is cgroups.CgroupMode.V1
    mode, hs = cgroups._parse_mountinfo(UNIFIED)
    assert mode is cgroups.CgroupMode.UNIFIED and [h.mountpoint for h in hs] == ["/sys/fs/cgroup"]
    # A cgroup2 mounted over an earlier tmpfs at the same place is the one that counts.
    stacked = "29 23 0:25 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" + UNIFIED
    assert cgroups._parse_mountinfo(stacked)[0] is cgroups.CgroupMode.UNIFIED
    with pytest.raises(FailedPrecondition):
        cgroups._parse_mountinfo("29 23 0:25 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n")


def test_cgroups_path_and_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cgroups.cgroups_path("default", "abc") == "/pyengine/default/abc"
    assert cgroups.cgroups_path("default", "abc", "/custom") == "/custom/abc"
    monkeypatch.setattr(cgroups, "_layout", lambda: cgroups._parse_mountinfo(HYBRID))
    assert cgroups.cgroup_dirs("/pyengine/default/abc") == [
        "/sys/fs/cgroup/cpu,cpuacct/pyengine/default/abc", "/sys/fs/cgroup/memory/pyengine/default/abc",
        "/sys/fs/cgroup/systemd/pyengine/default/abc", "/sys/fs/cgroup/unified/pyengine/default/abc"]
    monkeypatch.setattr(cgroups, "_layout", lambda: cgroups._parse_mountinfo(UNIFIED))
    assert cgroups.cgroup_dirs("/pyengine/default/abc") == ["/sys/fs/cgroup/pyengine/default/abc"]
