"""The `pyengine` CLI's networks, volumes, published ports and mounts, against a test pyengined.

Networks use 10.241-10.243.x subnets and ports 18100-18199 on loopback, apart from the other test modules.
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_pyengine_cli as base
from tests.integration.helpers import fetch
from tests.integration.test_pyengine_cli import cli, ok

pyengined_only = base.pyengined_only


@pytest.fixture(scope="module")
def engine(pyengined_only: EngineDaemon) -> EngineDaemon:
    return pyengined_only


needs_netavark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "test -x /usr/lib/podman/netavark"]).returncode != 0,
    reason="netavark is not installed")

HTTPD = "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www"


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def inspect(engine: EngineDaemon, ref: str) -> dict:
    return json.loads(ok(engine, "inspect", ref))[0]


# networks --------------------------------------------------------------------


@needs_netavark
def test_network_create_ls_inspect_rm(engine):
    nid = ok(engine, "network", "create", "--subnet", "10.241.0.0/24", "--gateway", "10.241.0.1", "--ip-range",
             "10.241.0.128/25", "--internal", "--attachable", "--label", "a=1", "--label", "b",
             "-o", "com.docker.network.driver.mtu=1400", "clinet").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", nid)
    table = ok(engine, "network", "ls").splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
    assert {"bridge", "host", "none", "clinet"} <= {line.split()[1] for line in table[1:]}
    assert f"{nid[:12]}   clinet    bridge    local" in table
    assert ok(engine, "network", "ls", "-q", "--filter", "name=clinet") == nid[:12] + "\n"
    assert nid in ok(engine, "network", "ls", "-q", "--no-trunc").split()
    assert ok(engine, "network", "ls", "--filter", "label=a=1", "--format",
              "{{.Name}} {{.Driver}} {{.Internal}} {{.IPv6}} {{.Labels}}") == "clinet bridge true false a=1,b=\n"
    assert ok(engine, "network", "ls", "-f", "type=custom", "--format", "table {{.Name}}") == "NAME\nclinet\n"
    created_at = ok(engine, "network", "ls", "-f", "name=clinet", "--format", "{{.CreatedAt}}").strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC", created_at)

    doc = json.loads(ok(engine, "network", "inspect", "clinet"))[0]
    assert doc["Id"] == nid and (doc["Internal"], doc["Attachable"]) == (True, True)
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.241.0.0/24", "Gateway": "10.241.0.1",
                                      "IPRange": "10.241.0.128/25"}]
    assert doc["Labels"] == {"a": "1", "b": ""} and doc["Options"] == {"com.docker.network.driver.mtu": "1400"}
    assert ok(engine, "network", "inspect", "-f", "{{.Name}} {{.Driver}}", "clinet", "bridge") == \
        "clinet bridge\nbridge bridge\n"
    assert ok(engine, "inspect", "--type", "network", "-f", "{{.Id}}", "clinet") == nid + "\n"
    assert ok(engine, "inspect", "-f", "{{.Name}}", "clinet") == "clinet\n"  # containers, images, then networks
    out = cli(engine, "network", "inspect", "clinet", "nosuch")
    assert out.returncode == 1 and json.loads(out.stdout)[0]["Id"] == nid and "nosuch" in out.stderr

    dup = cli(engine, "network", "create", "clinet")
    assert dup.returncode == 1 and "Error response from daemon: " in dup.stderr and "already exists" in dup.stderr
    out = cli(engine, "network", "create", "--gateway", "10.241.1.1", "nogw")
    assert (out.returncode, out.stderr) == (1, "every ip-range or gateway must have a corresponding subnet\n")
    out = cli(engine, "network", "create", "--subnet", "10.241.1.0/24", "--gateway", "10.241.2.1", "nogw")
    assert (out.returncode, out.stderr) == (1, "no matching subnet for gateway 10.241.2.1\n")
    out = cli(engine, "network", "create", "--subnet", "10.241.1.0/24", "--subnet", "10.241.1.0/25", "nogw")
    assert out.returncode == 1 and "overlapping" in out.stderr
    assert "nogw" not in ok(engine, "network", "ls")

    out = cli(engine, "network", "rm", "clinet", "nosuch")
    assert out.returncode == 1 and out.stdout == "clinet\n" and out.stderr.count("Error response from daemon") == 1
    assert "clinet" not in ok(engine, "network", "ls")
    assert cli(engine, "network", "rm", "-f", "nosuch").returncode == 0
    out = cli(engine, "network", "rm", "bridge")
    assert out.returncode == 1 and "pre-defined" in out.stderr


@needs_netavark
def test_network_prune(engine):
    ok(engine, "network", "create", "--label", "k=prune", "unused1")
    ok(engine, "network", "create", "unused2")
    ok(engine, "network", "create", "--label", "k=prune", "used")
    ok(engine, "run", "-d", "--network", "used", "busybox", "sleep", "100")
    out = cli(engine, "network", "prune", input="n\n")
    assert (out.returncode, out.stdout) == (0, "WARNING! This will remove all custom networks not used by at least "
                                               "one container.\nAre you sure you want to continue? [y/N] ")
    assert ok(engine, "network", "prune", "-f", "--filter", "label=k=prune") == "Deleted Networks:\nunused1\n\n"
    out = ok(engine, "network", "prune", input="y\n")
    assert out.endswith("[y/N] Deleted Networks:\nunused2\n\n")
    assert ok(engine, "network", "ls", "-f", "type=custom", "--format", "{{.Name}}") == "used\n"
    assert ok(engine, "network", "prune", "-f") == ""


@needs_netavark
def test_network_alias_resolves_between_containers(engine):
    ok(engine, "network", "create", "appnet")
    ok(engine, "run", "-d", "--network", "appnet", "--name", "web", "--network-alias", "www",
       "--network-alias", "site", "busybox", "sh", "-c", HTTPD)
    for host in ("www", "site", "web"):
        out = ok(engine, "run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                 f"for i in $(seq 50); do wget -qO- http://{host}/ && exit 0; sleep 0.1; done; exit 1")
        assert out == "hi\n"
    aliases = inspect(engine, "web")["NetworkSettings"]["Networks"]["appnet"]["Aliases"]
    assert {"www", "site"} <= set(aliases)
    # Only user-defined networks have names to resolve.
    out = cli(engine, "run", "--rm", "--network-alias", "nope", "busybox", "true")
    assert out.returncode == 125 and "network-scoped alias" in out.stderr


@needs_netavark
def test_network_connect_disconnect_and_static_ips(engine):
    ok(engine, "network", "create", "--subnet", "10.242.0.0/24", "n1")
    ok(engine, "run", "-d", "--name", "c1", "busybox", "sleep", "100")
    assert ok(engine, "network", "connect", "--ip", "10.242.0.50", "--alias", "svc", "n1", "c1") == ""
    assert "inet 10.242.0.50/24" in ok(engine, "exec", "c1", "ip", "-4", "addr")
    net = json.loads(ok(engine, "network", "inspect", "n1"))[0]
    cid = inspect(engine, "c1")["Id"]
    assert net["Containers"][cid]["IPv4Address"] == "10.242.0.50/24"
    assert "svc" in inspect(engine, "c1")["NetworkSettings"]["Networks"]["n1"]["Aliases"]
    busy = cli(engine, "network", "rm", "n1")
    assert busy.returncode == 1 and "active endpoints" in busy.stderr
    again = cli(engine, "network", "connect", "n1", "c1")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert ok(engine, "network", "disconnect", "n1", "c1") == ""
    assert "10.242.0.50" not in ok(engine, "exec", "c1", "ip", "-4", "addr")
    ok(engine, "run", "-d", "--name", "c2", "--network", "n1", "--ip", "10.242.0.60", "busybox", "sleep", "100")
    settings = inspect(engine, "c2")["NetworkSettings"]["Networks"]["n1"]
    assert settings["IPAddress"] == "10.242.0.60" and settings["IPAMConfig"] == {"IPv4Address": "10.242.0.60"}
    assert ok(engine, "network", "disconnect", "-f", "n1", "c2") == ""
    missing = cli(engine, "network", "disconnect", "n1", "nosuch")
    assert missing.returncode == 1 and "Error response from daemon: " in missing.stderr
    ok(engine, "network", "rm", "n1")


# published ports -------------------------------------------------------------


@needs_netavark
def test_publish_fetch_and_port(engine):
    ok(engine, "run", "-d", "--name", "pub", "-p", "127.0.0.1:18100:80", "busybox", "sh", "-c", HTTPD)
    assert fetch("http://127.0.0.1:18100/") == "hi\n"
    assert ok(engine, "port", "pub") == "80/tcp -> 127.0.0.1:18100\n"
    assert ok(engine, "port", "pub", "80") == "127.0.0.1:18100\n"
    assert ok(engine, "port", "pub", "80/tcp") == "127.0.0.1:18100\n"
    out = cli(engine, "port", "pub", "81")
    assert (out.returncode, out.stderr) == (1, "Error: No public port '81' published for pub\n")
    out = cli(engine, "port", "pub", "http")
    assert (out.returncode, out.stderr) == (1, "Error: invalid port (http)\n")
    assert ok(engine, "ps", "--filter", "name=pub", "--format", "{{.Ports}}") == "127.0.0.1:18100->80/tcp\n"
    table = ok(engine, "ps", "--filter", "name=pub").splitlines()
    assert "   127.0.0.1:18100->80/tcp   pub" in table[1]
    doc = inspect(engine, "pub")
    assert doc["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert doc["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18100"}]}


@needs_netavark
def test_publish_ranges_udp_expose_and_publish_all(engine):
    ok(engine, "run", "-d", "--name", "rng", "-p", "127.0.0.1:18101-18102:9001-9002", "-p",
       "127.0.0.1:18103:53/udp", "--expose", "7000-7001", "busybox", "sleep", "100")
    assert ok(engine, "port", "rng") == ("53/udp -> 127.0.0.1:18103\n9001/tcp -> 127.0.0.1:18101\n"
                                         "9002/tcp -> 127.0.0.1:18102\n")
    assert ok(engine, "port", "rng", "9002") == "127.0.0.1:18102\n"
    assert ok(engine, "port", "rng", "53/udp") == "127.0.0.1:18103\n"
    assert ok(engine, "ps", "-f", "name=rng", "--format", "{{.Ports}}") == (
        "7000-7001/tcp, 127.0.0.1:18103->53/udp, 127.0.0.1:18101->9001/tcp, 127.0.0.1:18102->9002/tcp\n")
    exposed = inspect(engine, "rng")["Config"]["ExposedPorts"]
    assert set(exposed) == {"53/udp", "9001/tcp", "9002/tcp", "7000/tcp", "7001/tcp"}
    ok(engine, "run", "-d", "--name", "all", "--expose", "7000", "-P", "busybox", "sleep", "100")
    host, _, number = ok(engine, "port", "all", "7000").strip().rpartition(":")
    assert host == "0.0.0.0" and int(number) > 1024


def test_bad_run_specs_exit_125(engine):
    for args, message in [
        (["-p", "127.0.0.1:99999:80"], "invalid hostPort: 99999"),
        (["-p", "80/sctx"], "invalid proto: sctx"),
        (["-p", "300.1.1.1:80:80"], "invalid IP address: 300.1.1.1"),
        (["-p", "18110-18112:80-81"], "invalid ranges specified for container and host Ports"),
        (["--expose", "1:2"], "invalid port format for --expose: 1:2"),
        (["--mount", "type=tmpfs,tmpfs-size=4m"], "target is required"),
        (["--mount", "type=bind,src=/tmp,dst=/x,tmpfs-size=1m"], "cannot mix 'tmpfs-*' options with mount type 'bind'"),
        (["--mount", "type=volume,target=relative"], "must be absolute"),
        (["--mount", "type=bind,src=/tmp,dst=/x,bind-recursive=writable"],
         "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"),
        (["--mount", "type=bind,src=/tmp,dst=/x,readonly,bind-recursive=readonly"],
         "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"),
        (["--mount", "type=bind,src=/tmp,dst=/x,bind-recursive=bogus"], "invalid value for bind-recursive: bogus"),
        (["--network", "nosuch"], "not found"),
        (["--ip", "10.9.9.9"], "user defined networks only"),
    ]:
        out = cli(engine, "run", "--rm", *args, "busybox", "true")
        assert out.returncode == 125 and message in out.stderr, (args, out.stderr)
    assert ok(engine, "ps", "-aq") == ""


# volumes ---------------------------------------------------------------------


def test_volume_create_ls_inspect_rm(engine):
    assert ok(engine, "volume", "create", "--label", "a=1", "clivol") == "clivol\n"
    anonymous = ok(engine, "volume", "create").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", anonymous)
    assert ok(engine, "volume", "create", "-d", "local", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
              "o=size=1m", "optvol") == "optvol\n"
    table = ok(engine, "volume", "ls").splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["DRIVER", "VOLUME NAME"]
    assert [line.split() for line in table[1:]] == [["local", n] for n in sorted([anonymous, "clivol", "optvol"])]
    assert ok(engine, "volume", "ls", "-q", "--filter", "name=vol") == "clivol\noptvol\n"
    assert ok(engine, "volume", "ls", "--filter", "label=a=1", "--format",
              "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} {{.Links}}") == "clivol local local a=1 N/A\n"
    doc = json.loads(ok(engine, "volume", "inspect", "clivol"))[0]
    assert (doc["Name"], doc["Driver"], doc["Labels"]) == ("clivol", "local", {"a": "1"})
    assert doc["Mountpoint"].endswith("/clivol/_data")
    assert ok(engine, "volume", "inspect", "-f", "{{json .Options}}", "optvol") == \
        '{"device":"tmpfs","o":"size=1m","type":"tmpfs"}\n'
    assert ok(engine, "inspect", "--type", "volume", "-f", "{{.Name}}", "clivol") == "clivol\n"
    out = cli(engine, "volume", "inspect", "nosuch")
    assert (out.returncode, out.stdout) == (1, "[]\n") and "no such volume" in out.stderr
    bad = cli(engine, "volume", "create", "a/b")
    assert bad.returncode == 1 and "invalid characters" in bad.stderr
    bad = cli(engine, "volume", "create", "-d", "nosuch", "x1")
    assert bad.returncode == 1 and "nosuch" in bad.stderr

    out = cli(engine, "volume", "rm", "clivol", "nosuch", anonymous)
    assert out.returncode == 1 and out.stdout == f"clivol\n{anonymous}\n" and "no such volume" in out.stderr
    assert ok(engine, "volume", "rm", "-f", "nosuch") == "nosuch\n"
    assert ok(engine, "volume", "ls", "-q") == "optvol\n"


def test_run_with_named_anonymous_and_mounted_volumes(engine, tmp_path):
    ok(engine, "run", "--rm", "--network", "none", "-v", "data1:/data", "busybox", "sh", "-c",
       "echo kept > /data/f")
    assert "data1" in ok(engine, "volume", "ls", "-q").split()
    out = cli(engine, "run", "--rm", "--network", "none", "-v", "data1:/data:ro", "busybox", "sh", "-c",
              "cat /data/f; touch /data/g")
    assert out.stdout == "kept\n" and out.returncode != 0 and "Read-only file system" in out.stderr
    assert ok(engine, "run", "--rm", "--network", "none", "--mount", "type=volume,src=data1,dst=/d,readonly",
              "busybox", "cat", "/d/f") == "kept\n"
    ok(engine, "run", "--rm", "--network", "none", "-v", "data1:/data", "busybox", "mkdir", "/data/part")
    assert ok(engine, "run", "--rm", "--network", "none", "--mount", "type=volume,src=data1,dst=/d,volume-subpath=part",
              "busybox", "sh", "-c", "touch /d/in-part; ls /d") == "in-part\n"
    ok(engine, "run", "--rm", "--network", "none", "--mount", "type=volume,src=lab1,dst=/d,volume-label=team=db,"
       "volume-label=bare,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs", "busybox", "true")
    lab = json.loads(ok(engine, "volume", "inspect", "lab1"))[0]
    assert (lab["Labels"], lab["Options"]) == ({"team": "db", "bare": ""}, {"type": "tmpfs", "device": "tmpfs"})

    ok(engine, "run", "-d", "--name", "anon", "-v", "/scratch", "busybox", "sleep", "100")
    doc = inspect(engine, "anon")
    assert doc["Config"]["Volumes"] == {"/scratch": {}}
    (mount,) = doc["Mounts"]
    assert (mount["Type"], mount["Destination"]) == ("volume", "/scratch")
    assert mount["Name"] in ok(engine, "volume", "ls", "-q").split()
    # docker's {{.Mounts}} cuts names to 15 characters unless --no-trunc.
    assert ok(engine, "ps", "-f", "name=anon", "--format", "{{.Mounts}}") == mount["Name"][:14] + "…\n"
    assert ok(engine, "ps", "--no-trunc", "-f", "name=anon", "--format", "{{.Mounts}}") == mount["Name"] + "\n"
    busy = cli(engine, "volume", "rm", mount["Name"])
    assert busy.returncode == 1 and "volume is in use" in busy.stderr
    ok(engine, "rm", "-f", "-v", "anon")
    assert mount["Name"] not in ok(engine, "volume", "ls", "-q").split()

    (tmp_path / "in").write_text("from host\n")
    assert ok(engine, "run", "--rm", "--network", "none", "--mount",
              f"type=bind,source={tmp_path},target=/h,readonly", "busybox", "cat", "/h/in") == "from host\n"
    out = cli(engine, "run", "--rm", "--mount", f"type=bind,source={tmp_path}/nope,target=/x", "busybox", "true")
    assert out.returncode == 125 and "does not exist" in out.stderr


def test_volume_prune(engine):
    ok(engine, "volume", "create", "--label", "k=prune", "pv1")
    ok(engine, "volume", "create", "pv2")
    ok(engine, "run", "-d", "--network", "none", "-v", "pv3:/d", "busybox", "sleep", "100")
    # API 1.42+: named volumes go only with -a, as with docker 28.
    out = cli(engine, "volume", "prune", input="n\n")
    assert (out.returncode, out.stdout) == (0, "WARNING! This will remove anonymous local volumes not used by at least "
                                               "one container.\nAre you sure you want to continue? [y/N] "
                                               "Total reclaimed space: 0B\n")
    assert ok(engine, "volume", "prune", "-f") == "Total reclaimed space: 0B\n"
    assert ok(engine, "volume", "ls", "-q") == "pv1\npv2\npv3\n"
    assert ok(engine, "volume", "prune", "-a", "-f", "--filter", "label=k=prune") == \
        "Deleted Volumes:\npv1\n\nTotal reclaimed space: 0B\n"
    ok(engine, "run", "--rm", "--network", "none", "-v", "pv2:/d", "busybox", "sh", "-c",
       "head -c 100000 /dev/zero > /d/z")
    out = ok(engine, "volume", "prune", "-a", input="y\n")
    # The space is counted in blocks: a little over the bytes written.
    assert re.search(r"\[y/N\] Deleted Volumes:\npv2\n\nTotal reclaimed space: 10\d(\.\d+)?kB\n$", out), out
    assert ok(engine, "volume", "ls", "-q") == "pv3\n"


def test_tmpfs_mounts(engine):
    out = ok(engine, "run", "--rm", "--network", "none", "--tmpfs", "/t:size=8m,mode=1777", "busybox", "sh", "-c",
             "grep ' /t ' /proc/mounts; stat -c %a /t")
    assert "tmpfs /t tmpfs" in out and "size=8192k" in out and out.endswith("\n1777\n")
    out = ok(engine, "run", "--rm", "--network", "none", "--mount", "type=tmpfs,dst=/m,tmpfs-size=4m,tmpfs-mode=700",
             "busybox", "sh", "-c", "grep ' /m ' /proc/mounts; stat -c %a /m")
    assert "size=4096k" in out and out.endswith("\n700\n")


def test_system_df_counts_volumes(engine):
    ok(engine, "run", "--rm", "--network", "none", "-v", "dfvol:/d", "busybox", "sh", "-c",
       "head -c 100000 /dev/zero > /d/z")
    ok(engine, "run", "-d", "--network", "none", "-v", "dfbusy:/d", "busybox", "sleep", "100")
    rows = {line[:16].strip(): line[16:].split() for line in ok(engine, "system", "df").splitlines()[1:]}
    total, active, size, reclaimable, share = rows["Local Volumes"]
    assert (total, active, share) == ("2", "1", "(100%)")
    assert size == reclaimable and re.fullmatch(r"10\d(\.\d+)?kB", size)
