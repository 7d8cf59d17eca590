"""Create fields beyond the basics, each shown taking effect inside the container; the refused ones get a 400
naming them (engine/containers/fields.py lists which is which)."""
from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

import docker
import pytest

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def run(engine, *args: str) -> str:
    return ok(engine, "run", "--rm", *args)


def test_dns_servers_search_and_options_in_resolv_conf(engine) -> None:
    resolv = run(engine, "--dns", "192.0.2.53", "--dns", "192.0.2.54", "--dns-search", "a.test",
                 "--dns-search", "b.test", "--dns-option", "ndots:2", "busybox", "cat", "/etc/resolv.conf")
    assert resolv.splitlines() == ["search a.test b.test", "nameserver 192.0.2.53", "nameserver 192.0.2.54",
                                   "options ndots:2"]  # dockerd's order for a file it builds
    host = Path("/etc/resolv.conf").read_text()
    default = run(engine, "busybox", "cat", "/etc/resolv.conf")
    assert "192.0.2.53" not in default and ("search" in default) == any(
        line.startswith(("search", "domain")) for line in host.splitlines())


def test_extra_hosts_and_host_gateway_in_etc_hosts(engine) -> None:
    gateway = json.loads(ok(engine, "network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
    hosts = run(engine, "--add-host", "db.test:192.0.2.10", "--add-host", "gw.test:host-gateway", "busybox",
                "cat", "/etc/hosts")
    assert "192.0.2.10\tdb.test\n" in hosts and f"{gateway}\tgw.test\n" in hosts
    ok(engine, "create", "--name", "hosted", "--add-host", "db.test:192.0.2.10", "busybox")
    assert json.loads(ok(engine, "inspect", "--format", "{{json .HostConfig.ExtraHosts}}", "hosted")) == [
        "db.test:192.0.2.10"]


def test_network_none_has_dockers_files_and_takes_dns_and_extra_hosts(engine) -> None:
    hosts = run(engine, "--network", "none", "--hostname", "lone", "busybox", "cat", "/etc/hosts")
    assert hosts.startswith("127.0.0.1\tlocalhost\n::1\t") and "ff02::2\tip6-allrouters" in hosts
    assert "lone" not in hosts  # no address to give its own name, as under dockerd
    out = run(engine, "--network", "none", "--dns", "192.0.2.53", "--dns-search", "a.test",
              "--add-host", "db.test:192.0.2.10", "busybox", "cat", "/etc/resolv.conf", "/etc/hosts")
    assert "search a.test\nnameserver 192.0.2.53\n" in out and "192.0.2.10\tdb.test\n" in out


def test_dns_and_extra_hosts_refused_where_the_container_has_no_files_of_its_own(engine) -> None:
    ok(engine, "run", "-d", "--name", "netowner", "busybox", "sleep", "100")
    out = cli(engine, "run", "--rm", "--network", "container:netowner", "--add-host", "a:192.0.2.1", "busybox", "true")
    assert out.returncode != 0 and "conflicting options: custom host-to-IP mapping" in out.stderr


def _shm_size(mounts: str) -> str:
    line = next(line for line in mounts.splitlines() if line.split()[1] == "/dev/shm")
    return next(o for o in line.split()[3].split(",") if o.startswith("size="))


def test_shm_size(engine) -> None:
    assert _shm_size(run(engine, "busybox", "cat", "/proc/mounts")) == "size=65536k"
    assert _shm_size(run(engine, "--shm-size", "2m", "busybox", "cat", "/proc/mounts")) == "size=2048k"
    ok(engine, "create", "--name", "shm", "busybox")
    assert ok(engine, "inspect", "--format", "{{.HostConfig.ShmSize}}", "shm").strip() == "67108864"
    out = cli(engine, "run", "--rm", "--shm-size", "-1", "busybox", "true")
    assert out.returncode != 0


def test_cgroup_parent(engine) -> None:
    parent = f"/pyengine-test-{secrets.token_hex(4)}"
    try:
        ok(engine, "run", "-d", "--name", "parented", "--cgroup-parent", parent, "busybox", "sleep", "100")
        cid = ok(engine, "inspect", "--format", "{{.Id}}", "parented").strip()
        cgroups = ok(engine, "exec", "parented", "cat", "/proc/self/cgroup")
        assert f"{parent}/{cid}" in cgroups
        assert ok(engine, "inspect", "--format", "{{.HostConfig.CgroupParent}}", "parented").strip() == parent
    finally:
        engine.reset()
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            if (hierarchy / parent.lstrip("/")).is_dir():
                os.rmdir(hierarchy / parent.lstrip("/"))


def test_cgroupns_modes(engine) -> None:
    host_ns = str(os.stat("/proc/self/ns/cgroup").st_ino)
    inode = ("busybox", "stat", "-L", "-c", "%i", "/proc/self/ns/cgroup")
    assert run(engine, "--cgroupns", "host", *inode).strip() == host_ns
    assert run(engine, "--cgroupns", "private", *inode).strip() != host_ns
    ok(engine, "create", "--name", "ns", "--cgroupns", "private", "busybox")
    assert ok(engine, "inspect", "--format", "{{.HostConfig.CgroupnsMode}}", "ns").strip() == "private"


def test_masked_and_readonly_paths(engine) -> None:
    api = docker.APIClient(base_url=engine.host)
    try:
        c = api.create_container("busybox", ["sh", "-c", "cat /proc/version; echo x > /srv/f && echo wrote"],
                                 host_config={"MaskedPaths": ["/proc/version"], "ReadonlyPaths": ["/srv"]})
        api.start(c["Id"])
        assert api.wait(c["Id"])["StatusCode"] != 0
        assert b"Linux" not in api.logs(c["Id"]) and b"wrote" not in api.logs(c["Id"])
        hc = api.inspect_container(c["Id"])["HostConfig"]
        assert (hc["MaskedPaths"], hc["ReadonlyPaths"]) == (["/proc/version"], ["/srv"])
        default = api.inspect_container(api.create_container("busybox", ["true"])["Id"])["HostConfig"]
        assert "/proc/kcore" in default["MaskedPaths"] and "/proc/sys" in default["ReadonlyPaths"]
        privileged = api.create_container("busybox", ["true"], host_config={"Privileged": True})
        assert api.inspect_container(privileged["Id"])["HostConfig"]["MaskedPaths"] is None
    finally:
        api.close()
    assert "Linux" in run(engine, "busybox", "cat", "/proc/version")


def test_static_mac_address(engine) -> None:
    client = docker.DockerClient(base_url=engine.host)
    try:
        # docker-py sends the container-wide (deprecated) MacAddress, which belongs to the main network.
        out = client.containers.run("busybox", "cat /sys/class/net/eth0/address", remove=True,
                                    mac_address="02:42:ac:11:00:99")
        assert out == b"02:42:ac:11:00:99\n"
        net = client.networks.create("macnet")
        try:
            config = client.api.create_networking_config({"macnet": client.api.create_endpoint_config()})
            config["EndpointsConfig"]["macnet"]["MacAddress"] = "02:42:ac:11:00:aa"
            c = client.api.create_container("busybox", ["sleep", "100"], networking_config=config,
                                            host_config=client.api.create_host_config(network_mode="macnet"))
            client.api.start(c["Id"])
            assert client.containers.get(c["Id"]).exec_run("cat /sys/class/net/eth0/address").output == \
                b"02:42:ac:11:00:aa\n"
            settings = client.api.inspect_container(c["Id"])["NetworkSettings"]["Networks"]["macnet"]
            assert settings["MacAddress"] == "02:42:ac:11:00:aa"
            client.api.remove_container(c["Id"], force=True)
        finally:
            net.remove()
        with pytest.raises(docker.errors.APIError, match="conflicting options: mac-address and the network mode"):
            client.containers.create("busybox", "true", mac_address="02:42:ac:11:00:99", network_mode="host")
        with pytest.raises(docker.errors.APIError, match="invalid MAC address"):
            client.containers.create("busybox", "true", mac_address="nonsense")
    finally:
        client.close()


def test_volumes_from(engine, tmp_path: Path) -> None:
    (tmp_path / "hostfile").write_text("from the host\n")
    ok(engine, "volume", "create", "shared")
    ok(engine, "create", "--name", "source", "-v", "shared:/named", "-v", "/anon", "-v", f"{tmp_path}:/bound:ro",
       "busybox")
    ok(engine, "create", "--name", "middle", "--volumes-from", "source", "busybox")
    script = "echo one > /named/f && echo two > /anon/f && cat /bound/hostfile && cat /named/f /anon/f"
    assert run(engine, "--volumes-from", "middle", "busybox", "sh", "-c", script) == "from the host\none\ntwo\n"
    out = cli(engine, "run", "--rm", "--volumes-from", "source:ro", "busybox", "touch", "/named/g")
    assert out.returncode != 0 and "Read-only file system" in out.stderr
    ok(engine, "create", "--name", "reader", "--volumes-from", "source", "busybox")
    mounts = {m["Destination"]: m for m in json.loads(ok(engine, "inspect", "reader"))[0]["Mounts"]}
    assert set(mounts) == {"/named", "/anon", "/bound"}
    assert (mounts["/named"]["Name"], mounts["/bound"]["Source"], mounts["/bound"]["RW"]) == ("shared", str(tmp_path),
                                                                                               False)
    # The copies only use the volumes: removing one with -v leaves the source's anonymous volume alone.
    ok(engine, "rm", "-v", "reader")
    assert mounts["/anon"]["Name"] in ok(engine, "volume", "ls", "-q").split()
    missing = cli(engine, "create", "--volumes-from", "nosuch", "busybox")
    assert missing.returncode != 0 and "No such container: nosuch" in missing.stderr
    bad = cli(engine, "create", "--volumes-from", "source:xx", "busybox")
    assert bad.returncode != 0 and "invalid mode: xx" in bad.stderr


def test_links_on_the_default_bridge(engine) -> None:
    ok(engine, "run", "-d", "--name", "db", "-e", "SECRET=s3", "--expose", "5432", "--expose", "53/udp", "busybox",
       "sleep", "100")
    db = json.loads(ok(engine, "inspect", "db"))[0]
    ip, hostname = db["NetworkSettings"]["IPAddress"], db["Config"]["Hostname"]
    ok(engine, "run", "-d", "--name", "web", "--link", "db:store", "busybox", "sleep", "100")
    env = set(ok(engine, "exec", "web", "env").splitlines())
    assert {f"STORE_PORT=udp://{ip}:53", f"STORE_PORT_5432_TCP=tcp://{ip}:5432", f"STORE_PORT_5432_TCP_ADDR={ip}",
            "STORE_PORT_5432_TCP_PORT=5432", "STORE_PORT_5432_TCP_PROTO=tcp", f"STORE_PORT_53_UDP=udp://{ip}:53",
            "STORE_NAME=/web/store", "STORE_ENV_SECRET=s3"} <= env
    assert f"{ip}\tstore {hostname} db\n" in ok(engine, "exec", "web", "cat", "/etc/hosts")
    assert json.loads(ok(engine, "inspect", "--format", "{{json .HostConfig.Links}}", "web")) == ["/db:/web/store"]
    # db back with another address (its old one taken meanwhile): web's /etc/hosts follows, as dockerd's.
    ok(engine, "stop", "-t", "0", "db")
    ok(engine, "run", "-d", "--name", "filler", "busybox", "sleep", "100")
    ok(engine, "start", "db")
    moved = ok(engine, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db").strip()
    hosts = ok(engine, "exec", "web", "cat", "/etc/hosts")
    assert moved != ip and f"{moved}\tstore {hostname} db\n" in hosts and f"{ip}\tstore" not in hosts, hosts
    ok(engine, "rm", "-f", "web", "filler")
    ok(engine, "stop", "-t", "0", "db")
    ok(engine, "create", "--name", "late", "--link", "db", "busybox", "true")
    out = cli(engine, "start", "late")
    assert out.returncode != 0 and "Cannot link to a non running container: /db AS /late/db" in out.stderr
    # A failed start like any other: `run --rm` is answered and the container goes (it once waited for ever).
    out = cli(engine, "run", "--rm", "--name", "gone", "--link", "db", "busybox", "true", timeout=30)
    assert out.returncode == 125 and "Cannot link to a non running container: /db AS /gone/db" in out.stderr
    assert "gone" not in ok(engine, "ps", "-a", "--format", "{{.Names}}").split()
    out = cli(engine, "create", "--link", "nosuch:x", "busybox", "true")
    assert out.returncode != 0 and "could not get container for nosuch" in out.stderr
    out = cli(engine, "create", "--network", "host", "--link", "db", "busybox", "true")
    assert out.returncode != 0 and "host type networking can't be used with links" in out.stderr


def test_rm_link_removes_only_the_link(engine) -> None:
    ok(engine, "run", "-d", "--name", "ldb", "busybox", "sleep", "100")
    ok(engine, "create", "--name", "lweb", "--link", "ldb:store", "busybox", "env")
    # A bare name is the container's own, not a link: dockerd refuses and nothing is removed.
    out = cli(engine, "rm", "--link", "ldb")
    assert out.returncode != 0 and "cannot remove the default link name" in out.stderr
    assert "ldb" in ok(engine, "ps", "--format", "{{.Names}}").split()
    out = cli(engine, "rm", "--link", "lweb/nosuch")
    assert out.returncode != 0 and "No such container: lweb/nosuch" in out.stderr
    assert ok(engine, "rm", "--link", "lweb/store") == "lweb/store\n"
    assert json.loads(ok(engine, "inspect", "--format", "{{json .HostConfig.Links}}", "lweb")) is None
    assert not any(v.startswith("STORE_") for v in ok(engine, "start", "-a", "lweb").splitlines())
    assert "ldb" in ok(engine, "ps", "--format", "{{.Names}}").split()


def test_read_only_anonymous_volume_is_refused(engine) -> None:
    out = cli(engine, "create", "--mount", "type=volume,target=/data,readonly", "busybox", "true")
    assert out.returncode != 0 and "must not set ReadOnly mode when using anonymous volumes" in out.stderr


def test_memory_swappiness_and_oom_killer(engine) -> None:
    memory = "/sys/fs/cgroup/memory"
    assert run(engine, "--memory-swappiness", "10", "busybox", "cat", f"{memory}/memory.swappiness") == "10\n"
    control = run(engine, "-m", "32m", "--oom-kill-disable", "busybox", "cat", f"{memory}/memory.oom_control")
    assert "oom_kill_disable 1" in control
    assert "oom_kill_disable 0" in run(engine, "busybox", "cat", f"{memory}/memory.oom_control")
    status, _, body = curl(engine, "POST", "/v1.41/containers/create",
                           json.dumps({"Image": "busybox", "HostConfig": {"MemorySwappiness": 101}}))
    assert (status, json.loads(body)) == (400, {"message": "Invalid value: 101, valid memory swappiness range is "
                                                           "0-100"})


def test_device_cgroup_rules(engine) -> None:
    script = "mknod /tmp/loop b 7 0 && head -c 1 /tmp/loop; cat /sys/fs/cgroup/devices/devices.list"
    denied = cli(engine, "run", "--rm", "busybox", "sh", "-c", script)
    assert "Operation not permitted" in denied.stderr and "b 7:0 r" not in denied.stdout
    allowed = cli(engine, "run", "--rm", "--device-cgroup-rule", "b 7:0 r", "busybox", "sh", "-c", script)
    assert "Operation not permitted" not in allowed.stderr and "b 7:0 r" in allowed.stdout


def test_block_io_limits_per_device(engine) -> None:
    disk = next((d for d in ("/dev/vda", "/dev/sda", "/dev/loop0") if os.path.exists(d)
                 and stat.S_ISBLK(os.stat(d).st_mode)), None)
    if disk is None:
        pytest.skip("no block device on this host")
    rdev = os.stat(disk).st_rdev
    blkio = "/sys/fs/cgroup/blkio"
    out = run(engine, "--device-read-bps", f"{disk}:1mb", "--device-write-iops", f"{disk}:50", "busybox", "cat",
              f"{blkio}/blkio.throttle.read_bps_device", f"{blkio}/blkio.throttle.write_iops_device")
    assert out == f"{os.major(rdev)}:{os.minor(rdev)} 1048576\n{os.major(rdev)}:{os.minor(rdev)} 50\n"
    weighted = cli(engine, "create", "--blkio-weight-device", f"{disk}:300", "busybox")
    assert weighted.returncode == 0, weighted.stderr
    if not Path(blkio, "blkio.weight_device").exists():
        assert "Weight-device discarded" in weighted.stderr


def test_links_on_a_user_defined_network(engine) -> None:
    ok(engine, "network", "create", "linknet")
    try:
        ok(engine, "run", "-d", "--name", "db2", "--network", "linknet", "busybox", "sleep", "100")
        ip = json.loads(ok(engine, "inspect", "db2"))[0]["NetworkSettings"]["Networks"]["linknet"]["IPAddress"]
        ok(engine, "run", "-d", "--name", "web2", "--network", "linknet", "--link", "db2:store", "busybox", "sleep",
           "100")
        assert f"{ip}\tstore\n" in ok(engine, "exec", "web2", "cat", "/etc/hosts")
        settings = json.loads(ok(engine, "inspect", "web2"))[0]["NetworkSettings"]["Networks"]["linknet"]
        assert settings["Links"] == ["db2:store"]
    finally:
        engine.reset()
        cli(engine, "network", "rm", "linknet")


def test_runtime_runc_only(engine) -> None:
    assert run(engine, "--runtime", "runc", "busybox", "echo", "ran") == "ran\n"
    out = cli(engine, "run", "--rm", "--runtime", "crun", "busybox", "true")
    assert out.returncode != 0 and "Unknown runtime specified crun" in out.stderr


@pytest.mark.parametrize("args, named", [
    (["--cpu-rt-runtime", "1000"], "CpuRealtimeRuntime"),
    (["--security-opt", "apparmor=myprofile"], "apparmor=myprofile"),
])
def test_refused_fields_are_a_400_naming_them(engine, args: list[str], named: str) -> None:
    out = cli(engine, "create", *args, "busybox", "true")
    assert out.returncode != 0 and named in out.stderr and "not supported" in out.stderr, out.stderr
    assert ok(engine, "ps", "-aq") == ""


def test_the_sdk_is_refused_the_same_way(engine) -> None:
    client = docker.DockerClient(base_url=engine.host)
    try:
        with pytest.raises(docker.errors.APIError) as refused:
            client.containers.create("busybox", "true", storage_opt={"size": "1G"})
        assert refused.value.status_code == 400 and "StorageOpt" in str(refused.value.explanation)
        assert client.containers.run("busybox", "echo hi", remove=True, dns=["192.0.2.53"]) == b"hi\n"
    finally:
        client.close()


@pytest.mark.parametrize("body, named", [
    ({"NetworkingConfig": {"EndpointsConfig": {"bridge": {"DriverOpts": {"com.example": "1"}}}}},
     "NetworkingConfig.EndpointsConfig.bridge.DriverOpts"),
    ({"HostConfig": {"UsernsMode": "private"}}, "UsernsMode"),
    ({"HostConfig": {"StorageOpt": {"size": "1G"}}}, "StorageOpt"),
])
def test_refused_fields_through_the_api(engine, body: dict, named: str) -> None:
    status, _, text = curl(engine, "POST", "/v1.41/containers/create",
                           json.dumps({"Image": "busybox", "Cmd": ["true"], **body}))
    assert status == 400 and named in json.loads(text)["message"] and "not supported" in text, text
