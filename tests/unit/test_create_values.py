"""Values of honoured create fields: dockerd's checks, the defaults inspect shows, links and --volumes-from."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.containers import links, volumesfrom
from engine.containers.images import Image
from engine.containers.mounts import Mount, volume_mounts
from engine.containers.options import DEFAULT_MASKED_PATHS, parse
from engine.containers.plan import plan
from engine.containers.store import Container
from engine.errors import Conflict, InvalidArgument, NotFound

CID = "ab" * 32
V1 = {"cgroup_version": "1", "cpuset": True, "memory_limit": True, "swap_limit": True, "memory_swappiness": True,
      "oom_kill_disable": True}
IMAGE = Image(ref="docker.io/library/busybox:latest", id="sha256:" + "c" * 64, config={"Cmd": ["sh"]})


def _plan(host_config: dict[str, Any] | None = None, **config: Any) -> Any:
    return plan(parse({"Image": "busybox", **config, "HostConfig": host_config or {}}), IMAGE, CID, V1)


@pytest.mark.parametrize("host_config, message", [
    ({"Isolation": "hyperv"}, "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
    ({"VolumeDriver": "nfs-plugin"}, "VolumeDriver 'nfs-plugin' .* not supported"),
    ({"UsernsMode": "private"}, "UsernsMode 'private' is not supported"),
    ({"CgroupnsMode": "shared"}, "invalid cgroup namespace mode: shared"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({"PidMode": "container:"}, "invalid PID mode: container:"),
    ({"PidMode": "container:a:b"}, "invalid PID mode: container:a:b"),
    ({"PidMode": "none"}, "invalid PID mode: none"),
    ({"UTSMode": "container:other"}, "UTSMode 'container:other' is not supported"),
    ({"SecurityOpt": ["apparmor=custom"]}, "SecurityOpt 'apparmor=custom' is not supported"),
    ({"SecurityOpt": ["bogus=1"]}, "invalid --security-opt 2"),
    ({"Dns": ["not-an-ip"]}, "invalid IP address in Dns"),
    ({"ExtraHosts": ["nohost"]}, "ExtraHosts"),
    ({"NetworkMode": "container:x", "DnsSearch": ["a"]}, "conflicting options: dns and the network mode"),
])
def test_dockerds_checks_on_values(host_config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _plan(host_config)


def test_accepted_values_and_what_inspect_shows() -> None:
    p = _plan({"Runtime": "runc", "Isolation": "default", "UsernsMode": "host", "VolumeDriver": "local", "LogConfig": {"Type": "json-file"},
               "SecurityOpt": ["no-new-privileges", "seccomp=unconfined", "label=disable", "apparmor=unconfined"],
               "IpcMode": "shareable", "ShmSize": 1 << 20, "CgroupParent": "/mine", "CpusetMems": "0",
               "Annotations": {"a": "b"}})
    hc, options = p.host_config, p.options
    assert (hc["Runtime"], hc["ShmSize"], hc["CgroupnsMode"], hc["IpcMode"]) == ("runc", 1 << 20, "host", "shareable")
    assert (options["shm_size"], options["cgroupns"], options["cgroup_parent"]) == (1 << 20, "host", "/mine")
    assert (options["cpuset_mems"], options["annotations"]) == ("0", {"a": "b"})
    assert hc["MaskedPaths"] == options["masked_paths"] == DEFAULT_MASKED_PATHS
    default = _plan()
    assert (default.host_config["ShmSize"], default.host_config["IpcMode"]) == (64 << 20, "private")
    assert plan(parse({"Image": "busybox"}), IMAGE, CID, {"cgroup_version": "2"}).options["cgroupns"] == "private"
    privileged = _plan({"Privileged": True, "MaskedPaths": ["/x"]})
    assert privileged.host_config["MaskedPaths"] is None and privileged.options["masked_paths"] is None
    unconfined = _plan({"MaskedPaths": [], "ReadonlyPaths": []})
    assert unconfined.options["masked_paths"] == unconfined.options["readonly_paths"] == []


def test_swappiness_and_the_oom_killer() -> None:
    p = _plan({"MemorySwappiness": 0, "OomKillDisable": True, "Memory": 64 << 20, "DeviceCgroupRules": ["b 7:0 r"]})
    assert (p.options["memory_swappiness"], p.options["oom_kill_disable"]) == (0, True)
    assert p.options["device_cgroup_rules"] == ["b 7:0 r"] and p.warnings == []
    # dockerd's default swap, as much as the memory, which inspect shows.
    assert p.host_config["MemorySwap"] == p.options["memory_swap"] == 128 << 20
    no_swap = plan(parse({"Image": "busybox", "HostConfig": {"Memory": 64 << 20}}), IMAGE, CID,
                   {**V1, "swap_limit": False})
    assert no_swap.options["memory_swap"] is None and "does not support swap limit" in no_swap.warnings[0]
    assert _plan({"MemorySwappiness": -1}).options["memory_swappiness"] is None
    lacking = plan(parse({"Image": "busybox", "HostConfig": {"MemorySwappiness": 5, "OomKillDisable": True}}),
                   IMAGE, CID, {**V1, "memory_swappiness": False, "oom_kill_disable": False})
    assert (lacking.options["memory_swappiness"], lacking.options["oom_kill_disable"]) == (None, False)
    assert len(lacking.warnings) == 2 and "OomKillDisable discarded" in lacking.warnings[1]
    unlimited = plan(parse({"Image": "busybox", "HostConfig": {"OomKillDisable": True}}), IMAGE, CID,
                     {**V1, "oom_kill_disable": True})
    assert unlimited.warnings and "no memory limit is set" in unlimited.warnings[0]
    for host_config, message in (({"MemorySwappiness": 101}, "valid memory swappiness range is 0-100"),
                                 ({"DeviceCgroupRules": ["c 1:3"]}, "invalid device cgroup format 'c 1:3'")):
        with pytest.raises(InvalidArgument, match=message):
            _plan(host_config)


def test_bind_mount_options(tmp_path: Path) -> None:
    missing = tmp_path / "made"
    p = _plan({"Mounts": [{"Type": "bind", "Source": str(tmp_path), "Target": "/flat",
                           "BindOptions": {"NonRecursive": True}},
                          {"Type": "bind", "Source": str(missing), "Target": "/made",
                           "BindOptions": {"CreateMountpoint": True}}]})
    assert [m["options"][0] for m in p.options["mounts"]] == ["bind", "rbind"] and missing.is_dir()
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        _plan({"Mounts": [{"Type": "bind", "Source": str(tmp_path / "absent"), "Target": "/a"}]})


@pytest.mark.parametrize("source, subpath, message", [
    ("", "sub", "must not set Subpath when using anonymous volumes"),
    ("data", "/etc", "subpath must be a relative path within the volume"),
    ("data", "a/../../etc", "subpath must be a relative path within the volume"),
    ("data", "..", "subpath must be a relative path within the volume"),
])
def test_volume_subpaths_dockerd_refuses(source: str, subpath: str, message: str) -> None:
    m = Mount.model_validate({"Type": "volume", "Source": source, "Target": "/v",
                              "VolumeOptions": {"Subpath": subpath}})
    with pytest.raises(InvalidArgument, match=message):
        volume_mounts([], [m], {}, [], [], set())


def test_volume_mount_options_for_a_new_volume() -> None:
    m = Mount.model_validate({"Type": "volume", "Source": "data", "Target": "/v", "VolumeOptions": {
        "Subpath": "a/./b/../c", "Labels": {"k": "v"},
        "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}})
    [want] = volume_mounts([], [m], {}, [], [], set())
    assert (want["subpath"], want["labels"], want["driver"], want["options"], want["copy"]) == (
        "a/./b/../c", {"k": "v"}, "local", {"type": "tmpfs", "device": "tmpfs"}, False)


def test_config_fields_kept_as_dockerd_keeps_them() -> None:
    p = _plan(Shell=["/bin/bash", "-c"], OnBuild=["RUN true"], ArgsEscaped=True, NetworkDisabled=True)
    assert (p.config["Shell"], p.config["OnBuild"], p.config["ArgsEscaped"]) == (["/bin/bash", "-c"],
                                                                                  ["RUN true"], True)
    assert p.network.mode == "none"


def test_the_container_wide_mac_address_goes_to_the_main_network() -> None:
    p = _plan(MacAddress="02:42:ac:11:00:02")
    assert p.network.endpoints == {"default": {"MacAddress": "02:42:ac:11:00:02"}}
    assert p.config["MacAddress"] == "02:42:ac:11:00:02"
    with pytest.raises(InvalidArgument, match="must match the endpoint-specific MAC address"):
        _plan({"NetworkMode": "net1"}, MacAddress="02:42:ac:11:00:02",
              NetworkingConfig={"EndpointsConfig": {"net1": {"MacAddress": "02:42:ac:11:00:03"}}})
    with pytest.raises(InvalidArgument, match="conflicting options: mac-address and the network mode"):
        _plan({"NetworkMode": "host"}, MacAddress="02:42:ac:11:00:02")


def test_links_on_a_user_network_are_the_endpoints() -> None:
    p = _plan({"NetworkMode": "net1", "Links": ["db:store"]},
              NetworkingConfig={"EndpointsConfig": {"net1": {"Aliases": ["a"], "Links": ["cache"]}}})
    assert p.network.endpoints == {"net1": {"Aliases": ["a"], "Links": ["cache", "db:store"]}}
    assert p.network.links == []
    assert _plan({"Links": ["db"]}).network.links == ["db"]


def _container(name: str, **kw: Any) -> Container:
    return Container(id=name * 64 if len(name) == 1 else (name * 64)[:64], name=name, created=0, image="busybox",
                     image_ref="busybox", image_id="sha256:x", path="sh", args=[],
                     config=kw.pop("config", {}), host_config=kw.pop("host_config", {}), **kw)


def test_link_environment() -> None:
    env = links.environment("/web/my-db", "172.17.0.3", ["5432/tcp", "53/udp", "53/tcp"], ["A=1", "PATH=/x"])
    assert env == ["MY_DB_PORT=tcp://172.17.0.3:53",
                   "MY_DB_PORT_53_TCP=tcp://172.17.0.3:53", "MY_DB_PORT_53_TCP_ADDR=172.17.0.3",
                   "MY_DB_PORT_53_TCP_PORT=53", "MY_DB_PORT_53_TCP_PROTO=tcp",
                   "MY_DB_PORT_53_UDP=udp://172.17.0.3:53", "MY_DB_PORT_53_UDP_ADDR=172.17.0.3",
                   "MY_DB_PORT_53_UDP_PORT=53", "MY_DB_PORT_53_UDP_PROTO=udp",
                   "MY_DB_PORT_5432_TCP=tcp://172.17.0.3:5432", "MY_DB_PORT_5432_TCP_ADDR=172.17.0.3",
                   "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp",
                   "MY_DB_NAME=/web/my-db", "MY_DB_ENV_A=1"]


def test_links_at_create_and_start() -> None:
    db = _container("d", config={"Hostname": "dbhost", "Env": ["X=1"]})
    found = {"d": db}
    assert links.at_create(["d:store", "d"], "web", "default", found.get) == ["/d:/web/store", "/d:/web/d"]
    for mode, message in (("host", "host type networking"), ("container:x", "container type network"),
                          ("none", "network mode none")):
        with pytest.raises(InvalidArgument, match=message):
            links.at_create(["d"], "web", mode, found.get)
    with pytest.raises(InvalidArgument, match="could not get container for nosuch"):
        links.at_create(["nosuch"], "web", "default", found.get)
    web = _container("w", host_config={"Links": ["/d:/web/store"]})
    with pytest.raises(Conflict, match="Cannot link to a non running container: /d AS /web/store"):
        links.resolve(web, found.get, lambda cid: "172.17.0.3")
    assert links.resolve(web, found.get, lambda cid: "172.17.0.3", strict=False).hosts == []
    db.state.start(1, 0.0)
    linked = links.resolve(web, found.get, lambda cid: "172.17.0.3")
    assert linked.hosts == [("store dbhost d", "172.17.0.3")] and "STORE_ENV_X=1" in linked.env
    with pytest.raises(InvalidArgument, match="does not belong to the default network"):
        links.resolve(web, found.get, lambda cid: None)
    with pytest.raises(NotFound):
        links.resolve(web, {}.get, lambda cid: None)


def test_volumes_from_copies_volumes_and_binds() -> None:
    source = _container("s", host_config={"Binds": ["/host:/bound:ro", "named:/named"],
                                          "Mounts": [{"Type": "bind", "Source": "/m", "Target": "/m"}]},
                        volumes=[{"name": "named", "destination": "/named", "read_only": False, "anonymous": False},
                                 {"name": "anon1", "destination": "/anon", "read_only": False, "anonymous": True}],
                        binds_from=[{"source": "/far", "destination": "/far", "read_only": False,
                                     "propagation": "rprivate"}])
    got = volumesfrom.inherited(["s"], {"s": source}.__getitem__, explicit={"/anon"})
    assert [v["destination"] for v in got.volumes] == ["/named"]
    assert {(b["source"], b["read_only"]) for b in got.binds} == {("/host", True), ("/m", False), ("/far", False)}
    read_only = volumesfrom.inherited(["s:ro"], {"s": source}.__getitem__, explicit=set())
    assert all(m["read_only"] for m in read_only.volumes + read_only.binds)
    # :rw (or a label mode) never makes what the source has read-only writable, as in dockerd.
    for mode in ("rw", "z"):
        writable = volumesfrom.inherited([f"s:{mode}"], {"s": source}.__getitem__, explicit=set())
        assert {(b["source"], b["read_only"]) for b in writable.binds} == {("/host", True), ("/m", False),
                                                                           ("/far", False)}
    for mode, message in (("xx", "invalid mode: xx"), ("rshared", "invalid mode: rshared"),
                          ("nocopy", "invalid mode: nocopy"), ("rro", "is not supported for volumes-from mounts")):
        with pytest.raises(InvalidArgument, match=message):
            volumesfrom.inherited([f"s:{mode}"], {"s": source}.__getitem__, explicit=set())


@pytest.mark.parametrize("bind, message", [
    ("/h:/c:rwo", "invalid mode: rwo"),
    ("/h:/c:ro,rw", "invalid mode: ro,rw"),
    ("/h:/c:rshared,rslave", "invalid mode: rshared,rslave"),
    ("/h:/c:nocopy", 'type "bind": field VolumeOptions must not be specified'),
    ("vol:/c:rshared", 'type "volume": field BindOptions must not be specified'),
    ("vol:/c:rro", "requires a bind mount"),
])
def test_bind_modes_dockerd_refuses(bind: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _plan({"Binds": [bind]})
        volume_mounts([bind], [], {}, [], [], set())


@pytest.mark.parametrize("bind, read_only", [("/h:/c:ro,Z", True), ("/h:/c:ro-non-recursive", True),
                                             ("/h:/c:z,rslave,cached", False), ("vol:/c:ro,nocopy", True)])
def test_bind_modes_dockerd_takes(tmp_path: Path, bind: str, read_only: bool) -> None:
    bind = bind.replace("/h:", f"{tmp_path}:")
    spec = [m for m in _plan({"Binds": [bind]}).options["mounts"] if m["destination"] == "/c"]
    assert [w in m["options"] for m in spec for w in ["ro"]] == ([read_only] if spec else [])
    if not spec:
        [want] = volume_mounts([bind], [], {}, [], [], set())
        assert (want["read_only"], want["copy"]) == (read_only, False)


def test_recursively_read_only_binds_need_mount_setattr(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="need mount_setattr"):
        _plan({"Binds": [f"{tmp_path}:/c:rro"]})
    p = plan(parse({"Image": "busybox", "HostConfig": {"Binds": [f"{tmp_path}:/c:rro", f"{tmp_path}:/d:ro",
                                                                   f"{tmp_path}:/e:ro-non-recursive"]}}),
             IMAGE, CID, {**V1, "recursive_readonly": True})
    assert [m["options"] for m in p.options["mounts"] if m["destination"] in ("/c", "/d", "/e")] == [
        ["rbind", "ro", "rro", "rprivate"], ["rbind", "ro", "rro", "rprivate"], ["rbind", "ro", "rprivate"]]


@pytest.mark.parametrize("opts, wanted", [(["no-new-privileges"], True), (["no-new-privileges=0"], False),
                                           (["no-new-privileges:T"], True),
                                           (["no-new-privileges", "no-new-privileges=false"], False),
                                           (["disable", "writable-cgroups=false", "label=disable"], False)])
def test_security_opts_read_as_dockerd_reads_them(opts: list[str], wanted: bool) -> None:
    assert _plan({"SecurityOpt": opts}).options["no_new_privileges"] is wanted


@pytest.mark.parametrize("host_config, message", [
    ({"SecurityOpt": ["no-new-privileges=maybe"]}, "invalid --security-opt 2"),
    ({"SecurityOpt": ["writable-cgroups=true"]}, "writable-cgroups=true' is not supported"),
    ({"Binds": ["/tmp:/d", "/var:/d/"]}, "Duplicate mount point: /d"),
    ({"Binds": ["/tmp:/d"], "Tmpfs": {"/d": ""}}, "Duplicate mount point: /d"),
    ({"Mounts": [{"Type": "tmpfs", "Target": "/t"}], "Tmpfs": {"/t": "size=1m"}}, "Duplicate mount point: /t"),
    ({"Mounts": [{"Source": "/tmp", "Target": "/t"}]}, "mount type unknown"),
])
def test_more_of_dockerds_refusals(host_config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _plan(host_config)


@pytest.mark.parametrize("mount, message", [
    ({"Type": "bind", "Source": "/tmp", "Target": "/c", "VolumeOptions": {"NoCopy": True}},
     'type "bind": field VolumeOptions must not be specified'),
    ({"Type": "tmpfs", "Source": "/tmp", "Target": "/c"}, 'type "tmpfs": field Source must not be specified'),
    ({"Type": "volume", "Target": "/c", "BindOptions": {"Propagation": "rshared"}},
     'type "volume": field BindOptions must not be specified'),
    ({"Type": "bind", "Source": "/tmp", "Target": "/c", "BindOptions": {"Propagation": "ro"}},
     "invalid propagation mode: ro"),
])
def test_mount_fields_of_another_type_dockerd_refuses(mount: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _plan({"Mounts": [mount]})


def test_session_18_audit_values() -> None:
    # A MAC address without a network is kept and used nowhere, as dockerd 20.10 keeps it.
    quiet = _plan({"NetworkMode": "none"}, MacAddress="02:42:ac:11:00:99")
    assert quiet.config["MacAddress"] == "02:42:ac:11:00:99" and not quiet.network.endpoints
    # WorkingDir as Go's filepath.Clean leaves it.
    cleaned = [_plan(WorkingDir=w).config["WorkingDir"] for w in ("/a/../b/", "/a//b/./c", "//x")]
    assert cleaned == ["/b", "/a/b/c", "/x"]
    # No SELinux label for a container sharing the host's processes or IPC, unless the client named one.
    for host_config in ({"Privileged": True}, {"IpcMode": "host"}, {"PidMode": "host"}):
        assert _plan(host_config).host_config["SecurityOpt"] == ["label=disable"]
    assert _plan({"PidMode": "host", "SecurityOpt": ["no-new-privileges"]}).host_config["SecurityOpt"] == \
        ["no-new-privileges"]
    assert _plan({}).host_config["SecurityOpt"] is None
    # seccomp's old colon spelling.
    assert _plan({"SecurityOpt": ["seccomp:unconfined"]}).options["seccomp"] == "unconfined"
