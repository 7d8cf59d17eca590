"""Networks and published ports (issue 5), driven by the real docker CLI against pyengined over netavark.

Traffic stays on loopback and inside the test's own namespaces. Each engine gets its own default
bridge name and address pool, so a test engine never touches a bridge or subnet of the host's.
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import pytest

from engine.networks.ports import ephemeral_ports
from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.integration.helpers import fetch, runtime_caught_up
from tests.integration.test_engine_containers import cli, ok

pytestmark = pytest.mark.skipif(subprocess.run(["sh", "-c", "test -x /usr/lib/podman/netavark"]).returncode != 0,
                                reason="netavark is not installed")

PAGE = "<h1>pyengine</h1>"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host,
                         extra_args=["--bridge-name", "pe-test0", "--bip", "10.231.0.1/24"]) as e:
        yield e


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def httpd(engine: EngineDaemon, *args: str) -> str:
    """A detached busybox httpd serving PAGE on port 80."""
    return ok(engine, "run", "-d", *args, "busybox", "sh", "-c",
              f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p 80 -h /www").strip()


def inspect(engine: EngineDaemon, ref: str) -> dict:
    return json.loads(ok(engine, "inspect", ref))[0]


def nat_rules() -> str:
    return subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout


def test_user_network_resolves_names_and_aliases(engine: EngineDaemon) -> None:
    ok(engine, "network", "create", "app")
    httpd(engine, "--network", "app", "--name", "web", "--network-alias", "www")
    for host in ("web", "www"):
        out = ok(engine, "run", "--rm", "--network", "app", "busybox", "wget", "-qO-", f"http://{host}/")
        assert PAGE in out
    net = json.loads(ok(engine, "network", "inspect", "app"))[0]
    assert net["Driver"] == "bridge" and len(net["Containers"]) == 1
    web = inspect(engine, "web")["NetworkSettings"]["Networks"]["app"]
    assert web["IPAddress"] and "www" in web["Aliases"]
    resolv = ok(engine, "exec", "web", "cat", "/etc/resolv.conf")
    # dockerd's embedded DNS address, which configurations name themselves (nginx's `resolver 127.0.0.11;`).
    assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == ["nameserver 127.0.0.11"]
    out = ok(engine, "run", "--rm", "--network", "app", "busybox", "nslookup", "www", "127.0.0.11")
    assert web["IPAddress"] in out
    # On two networks, names of both resolve; a disconnect leaves the other's working.
    ok(engine, "network", "create", "other")
    ok(engine, "run", "-d", "--name", "peer", "--network", "other", "busybox", "sleep", "60")
    ok(engine, "network", "connect", "other", "web")
    assert "Address" in ok(engine, "exec", "web", "nslookup", "peer", "127.0.0.11").split("Name:")[-1]
    ok(engine, "network", "disconnect", "app", "web")
    assert "Address" in ok(engine, "exec", "web", "nslookup", "peer").split("Name:")[-1]
    ok(engine, "rm", "-f", "peer")
    ok(engine, "network", "disconnect", "other", "web")
    ok(engine, "network", "rm", "other")


def test_published_port_on_loopback_and_cleanup(engine: EngineDaemon) -> None:
    cid = httpd(engine, "-p", "127.0.0.1:18080:80", "--name", "pub")
    assert PAGE in fetch("http://127.0.0.1:18080/")
    assert ok(engine, "port", "pub").strip() == "80/tcp -> 127.0.0.1:18080"
    ports = inspect(engine, "pub")["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}
    listed = json.loads(ok(engine, "ps", "--format", "{{json .}}").splitlines()[0])
    assert "127.0.0.1:18080->80/tcp" in listed["Ports"]
    clash = cli(engine, "run", "-d", "-p", "127.0.0.1:18080:80", "busybox", "sleep", "100")
    assert clash.returncode != 0 and "already allocated" in clash.stderr and "pub" in clash.stderr
    # dockerd's words first: compose 1.29 looks for them to add "Host is already in use by another container".
    assert re.search(r"driver failed programming external connectivity on endpoint \w+ \([0-9a-f]{64}\): "
                     r"Bind for 127\.0\.0\.1:18080 failed: port is already allocated", clash.stderr), clash.stderr
    ok(engine, "rm", "-f", cid)
    assert "18080" not in nat_rules()
    httpd(engine, "-p", "127.0.0.1:18080:80")  # the port is free again
    assert PAGE in fetch("http://127.0.0.1:18080/")


def test_published_ports_follow_network_changes_and_leave_no_rules(engine: EngineDaemon) -> None:
    """dockerd moves a container's ports to a network still connected; a disconnect once left its network's
    forwarding behind for good, pointing at an address no container had, over every later use of the port."""
    ok(engine, "network", "create", "moved")
    cid = httpd(engine, "-p", "127.0.0.1:18110:80", "--name", "mover")
    assert PAGE in fetch("http://127.0.0.1:18110/")
    ok(engine, "network", "connect", "moved", "mover")
    ok(engine, "network", "disconnect", "bridge", "mover")
    assert PAGE in fetch("http://127.0.0.1:18110/")
    ok(engine, "network", "disconnect", "moved", "mover")
    assert ok(engine, "port", "mover") == "" and inspect(engine, "mover")["NetworkSettings"]["Ports"] == {
        "80/tcp": None}
    ok(engine, "rm", "-f", "mover")
    ok(engine, "network", "rm", "moved")
    assert cid not in nat_rules() and "18110" not in nat_rules()
    # Two specific addresses share a port; a third asking for one of them is refused, and 0.0.0.0 too.
    ok(engine, "run", "-d", "--name", "ipa", "-p", "127.0.0.1:18111:80", "busybox", "sleep", "60")
    ok(engine, "run", "-d", "--name", "ipb", "-p", "127.0.0.2:18111:80", "busybox", "sleep", "60")
    for spec in ("127.0.0.1:18111:80", "18111:80"):
        out = cli(engine, "run", "-d", "-p", spec, "busybox", "sleep", "60")
        assert out.returncode != 0 and "already allocated" in out.stderr, (spec, out.stderr)
    ok(engine, "rm", "-f", "ipb")
    out = cli(engine, "run", "-d", "-p", "127.0.0.1:18111:80", "busybox", "sleep", "60")
    assert out.returncode != 0 and "(by container ipa)" in out.stderr
    ok(engine, "rm", "-f", "ipa")
    # A port the engine chose is chosen anew at each start, round the range as dockerd's allocator goes.
    ok(engine, "run", "-d", "--name", "rnd", "-p", "80", "busybox", "sleep", "60")
    first = ok(engine, "port", "rnd", "80")
    ok(engine, "restart", "-t", "0", "rnd")
    assert ok(engine, "port", "rnd", "80") != first
    ok(engine, "rm", "-f", "rnd")


def test_default_bridge_reaches_by_ip_with_nat(engine: EngineDaemon) -> None:
    httpd(engine, "--name", "b1")
    ip = inspect(engine, "b1")["NetworkSettings"]["IPAddress"]
    assert ip.startswith("10.231.0.")
    # dockerd's MAC: 02:42 and the address's bytes, in inspect and on the interface.
    mac = "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
    assert inspect(engine, "b1")["NetworkSettings"]["MacAddress"] == mac
    assert ok(engine, "exec", "b1", "cat", "/sys/class/net/eth0/address").strip() == mac
    out = ok(engine, "run", "--rm", "busybox", "wget", "-qO-", f"http://{ip}/")
    assert PAGE in out
    assert "10.231.0.0/24" in nat_rules() and "MASQUERADE" in nat_rules()


def test_publish_all_and_ranges(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "rng", "-p", "127.0.0.1:19000-19002:9000-9002", "busybox", "sh", "-c",
       f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p 9001 -h /www")
    assert ok(engine, "port", "rng", "9001").strip() == "127.0.0.1:19001"
    assert inspect(engine, "rng")["NetworkSettings"]["Ports"] == {
        f"900{i}/tcp": [{"HostIp": "127.0.0.1", "HostPort": f"1900{i}"}] for i in range(3)}
    # The CLI sends the range as three ports; it is forwarded as one range, each host port to its own.
    assert PAGE in fetch("http://127.0.0.1:19001/")
    assert len([rule for rule in nat_rules().splitlines() if "--dport 19000:19002 -j DNAT" in rule]) == 1
    ok(engine, "rm", "-f", "rng")
    assert "19000" not in nat_rules()
    ok(engine, "run", "-d", "--name", "all", "--expose", "7000", "-P", "busybox", "sleep", "100")
    host_port = int(ok(engine, "port", "all", "7000").strip().rsplit(":", 1)[1])
    assert host_port in ephemeral_ports()  # the host's range, as dockerd's allocator takes it


def test_connect_disconnect_and_in_use(engine: EngineDaemon) -> None:
    ok(engine, "network", "create", "--subnet", "10.232.0.0/24", "n1")
    ok(engine, "run", "-d", "--name", "c1", "busybox", "sleep", "100")
    ok(engine, "network", "connect", "--ip", "10.232.0.50", "--alias", "svc", "n1", "c1")
    assert "10.232.0.50" in ok(engine, "exec", "c1", "ip", "-4", "addr")
    busy = cli(engine, "network", "rm", "n1")
    assert busy.returncode != 0 and "active endpoints" in busy.stderr
    ok(engine, "network", "disconnect", "n1", "c1")
    assert "10.232.0.50" not in ok(engine, "exec", "c1", "ip", "-4", "addr")
    gone = cli(engine, "network", "disconnect", "n1", "c1")
    assert gone.returncode == 1 and "is not connected to network n1" in gone.stderr
    # A container that does not run takes a second connect as its new settings there, as dockerd; one refused
    # leaves those it had.
    ok(engine, "create", "--name", "c2", "busybox", "true")
    ok(engine, "network", "connect", "--alias", "first", "n1", "c2")
    ok(engine, "network", "connect", "--alias", "second", "n1", "c2")
    assert inspect(engine, "c2")["NetworkSettings"]["Networks"]["n1"]["Aliases"] == ["second"]
    assert cli(engine, "network", "connect", "--ip", "10.9.9.9", "n1", "c2").returncode == 1
    assert inspect(engine, "c2")["NetworkSettings"]["Networks"]["n1"]["Aliases"] == ["second"]
    ok(engine, "network", "disconnect", "n1", "c2")
    gone = cli(engine, "network", "disconnect", "n1", "c2")
    assert gone.returncode == 1 and "is not connected to the network n1" in gone.stderr
    ok(engine, "rm", "c2")
    ok(engine, "network", "rm", "n1")
    # Made before its network (compose's `create`, then `up`): a connect since is what the first start wires.
    ok(engine, "create", "--name", "late", "--network", "latenet", "busybox", "sleep", "100")
    ok(engine, "network", "create", "latenet")
    ok(engine, "network", "connect", "--alias", "al", "latenet", "late")
    ok(engine, "start", "late")
    assert "al" in inspect(engine, "late")["NetworkSettings"]["Networks"]["latenet"]["Aliases"]
    ok(engine, "rm", "-f", "late")
    ok(engine, "network", "rm", "latenet")


def test_bad_input(engine: EngineDaemon) -> None:
    ok(engine, "network", "create", "--subnet", "10.233.0.0/16", "first")
    overlap = cli(engine, "network", "create", "--subnet", "10.233.1.0/24", "second")
    assert overlap.returncode != 0 and "overlaps" in overlap.stderr
    assert "second" not in ok(engine, "network", "ls")
    bad_port = cli(engine, "run", "--rm", "-p", "127.0.0.1:99999:80", "busybox", "true")
    assert bad_port.returncode == 125
    unknown = cli(engine, "run", "--rm", "--network", "nosuch", "busybox", "true")
    assert unknown.returncode == 125 and "not found" in unknown.stderr
    dup = cli(engine, "network", "create", "first")
    assert dup.returncode != 0 and "already exists" in dup.stderr
    builtin = cli(engine, "network", "rm", "bridge")
    assert builtin.returncode != 0 and "pre-defined" in builtin.stderr
    # What a network cannot have here is refused by name, never dropped.
    for flags, word in ((["--ingress"], "Ingress"), (["--config-only"], "ConfigOnly"), (["--scope", "swarm"], "scope"),
                        (["--ipam-driver", "dhcp"], "IPAM driver"), (["--ipam-opt", "a=b"], "IPAM options"),
                        (["--subnet", "10.235.0.0/24", "--aux-address", "r=10.235.0.9"], "AuxiliaryAddresses")):
        refused = cli(engine, "network", "create", *flags, "refused")
        assert refused.returncode != 0 and word in refused.stderr, (flags, refused.stderr)
    assert "refused" not in ok(engine, "network", "ls")
    ok(engine, "create", "--name", "joiner", "busybox", "true")
    for flags, word in ((["--driver-opt", "k=v"], "DriverOpts"), (["--gw-priority", "5"], "GwPriority"),
                        (["--link-local-ip", "169.254.0.2"], "LinkLocalIPs")):
        refused = cli(engine, "network", "connect", *flags, "first", "joiner")
        assert refused.returncode != 0 and word in refused.stderr, (flags, refused.stderr)
    assert "first" not in inspect(engine, "joiner")["NetworkSettings"]["Networks"]


def _counts(engine: EngineDaemon) -> tuple[int, int, int, int, int]:
    """What this engine has made on the host (other engines may run beside it): veths on its bridges,
    mounts and namespace files under its roots, firewall rules for its subnet and port, addresses in use."""
    runtime_caught_up(engine.runtime.address, set(ok(engine, "ps", "-aq", "--no-trunc").split()))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    veths = sum(1 for line in links.splitlines() if ("master pe-cyc0" in line or f"master {engine.bridge}" in line)
                and not _name(line).startswith("pa-"))
    ours = [line for line in open("/proc/mounts") if engine.runtime.base in line]
    rules = nat_rules() + subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    firewall = sum(1 for line in rules.splitlines() if "10.234.0.0/24" in line or "18181" in line)
    addresses = len(json.loads(ok(engine, "network", "inspect", "cyc"))[0]["Containers"])
    return veths, len(ours), sum(1 for line in ours if "nsfs" in line), firewall, addresses


@pytest.mark.slow
def test_cycles_leave_nothing_behind(engine: EngineDaemon) -> None:
    ok(engine, "network", "create", "--subnet", "10.234.0.0/24", "-o", "com.docker.network.bridge.name=pe-cyc0",
       "cyc")
    ok(engine, "run", "--rm", "--network", "cyc", "busybox", "true")
    ok(engine, "run", "--rm", "-p", "127.0.0.1:18181:80", "busybox", "true")
    before = _counts(engine)
    for i in range(50):
        ok(engine, "run", "-d", "--name", f"cy{i}", "--network", "cyc", "-p", "127.0.0.1:18181:80", "-v",
           f"cyvol{i % 3}:/data", "busybox", "sleep", "100")
        ok(engine, "rm", "-f", f"cy{i}")
    # The network's bridge and its rules stay up between containers (dockerd keeps its bridges too).
    assert _counts(engine) == before
    assert (before[0], before[2], before[4]) == (0, 0, 0) and "18181" not in nat_rules()
    ok(engine, "volume", "rm", "cyvol0", "cyvol1", "cyvol2")
    ok(engine, "network", "rm", "cyc")
    assert "10.234.0.0/24" not in nat_rules() + _filter_rules()
    assert subprocess.run(["ip", "link", "show", "pe-cyc0"], capture_output=True).returncode != 0


def _name(link_line: str) -> str:
    return link_line.split(":")[1].strip().split("@")[0]


def _filter_rules() -> str:
    return subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout


def _ports(bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout
    return [_name(line) for line in out.splitlines()]


def _exists(link: str) -> bool:
    return subprocess.run(["ip", "link", "show", link], capture_output=True).returncode == 0


def test_bridges_stay_up_between_containers_until_removed(engine: EngineDaemon) -> None:
    """netavark takes a bridge and its rules down with the network's last container; an anchor port keeps them
    up, as dockerd keeps its bridges, until `network rm` or the engine's stop takes them down."""
    ok(engine, "network", "create", "--subnet", "10.236.0.0/24", "-o", "com.docker.network.bridge.name=pe-keep0",
       "keep")
    ok(engine, "run", "--rm", "--network", "keep", "busybox", "true")
    (anchor,) = _ports("pe-keep0")
    assert anchor.startswith("pa-") and "10.236.0.0/24" in nat_rules()
    peer = httpd(engine, "--network", "keep", "--name", "peer")
    assert PAGE in ok(engine, "run", "--rm", "--network", "keep", "busybox", "wget", "-qO-", "http://peer/")
    ok(engine, "rm", "-f", peer)
    assert _ports("pe-keep0") == [anchor]
    ok(engine, "network", "rm", "keep")
    assert not _exists("pe-keep0") and not _exists(anchor)
    assert "10.236.0.0/24" not in nat_rules() + _filter_rules()

    # The default bridge: kept while the engine runs, taken down by its stop; a running container keeps it.
    ok(engine, "run", "--rm", "busybox", "true")
    assert [p for p in _ports(engine.bridge) if p.startswith("pa-")]
    engine.stop()
    assert not _exists(engine.bridge) and "10.231.0.0/24" not in nat_rules() + _filter_rules()
    engine.start()
    ok(engine, "run", "--rm", "busybox", "true")
    keeper = httpd(engine, "--name", "keeper")
    engine.stop()
    assert _exists(engine.bridge) and not [p for p in _ports(engine.bridge) if p.startswith("pa-")]
    engine.start()
    ok(engine, "rm", "-f", keeper)
    assert not _exists(engine.bridge) and "10.231.0.0/24" not in nat_rules() + _filter_rules()


def test_engine_restart_keeps_published_container_serving(engine: EngineDaemon) -> None:
    httpd(engine, "-p", "127.0.0.1:18090:80", "--name", "keep")
    ip = inspect(engine, "keep")["NetworkSettings"]["IPAddress"]
    assert PAGE in fetch("http://127.0.0.1:18090/")
    engine.stop()
    assert PAGE in fetch("http://127.0.0.1:18090/")  # nothing of the engine is in the data path
    engine.start()
    assert PAGE in fetch("http://127.0.0.1:18090/")
    after = inspect(engine, "keep")
    assert after["State"]["Running"] and after["NetworkSettings"]["IPAddress"] == ip
    assert after["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18090"}]}
    # The restarted engine still knows the port is taken, and frees it with the container.
    clash = cli(engine, "run", "-d", "-p", "127.0.0.1:18090:80", "busybox", "sleep", "100")
    assert clash.returncode != 0 and "already allocated" in clash.stderr
    ok(engine, "rm", "-f", "keep")
    assert "18090" not in nat_rules()


def test_two_engines_on_one_host_keep_their_rules_apart(engine: EngineDaemon, tmp_path_factory, registry) -> None:
    """Each engine's default network is Docker's `bridge`; netavark names chains after its networks, so the
    engines give it names of their own, and one engine's teardown leaves the other's rules alone."""
    httpd(engine, "--name", "first", "-p", "127.0.0.1:18120:80")
    with mirrored_engine(str(tmp_path_factory.mktemp("rt2")), registry.host,
                         extra_args=["--bip", "10.232.0.1/24"]) as other:
        httpd(other, "--name", "second", "-p", "127.0.0.1:18121:80")
        assert PAGE in fetch("http://127.0.0.1:18120/") and PAGE in fetch("http://127.0.0.1:18121/")
        # Chains of their own: two netavark runs at once never race to make or remove the same chain.
        rules = subprocess.run(["iptables", "-t", "nat", "-S", "NETAVARK-HOSTPORT-DNAT"], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        chains = {port: {r.rsplit("-j ", 1)[1] for r in rules if f"--dport {port} " in r} for port in (18120, 18121)}
        assert len(chains[18120]) == len(chains[18121]) == 1 and chains[18120] != chains[18121]
        ok(other, "rm", "-f", "second")
        assert PAGE in fetch("http://127.0.0.1:18120/")
        httpd(other, "--name", "third", "-p", "127.0.0.1:18121:80")
        ok(engine, "rm", "-f", "first")
        assert PAGE in fetch("http://127.0.0.1:18121/")
        other.reset()


def _host_address() -> str:
    """The host's own address on its default route: what a container dials to reach a published port."""
    out = subprocess.run(["ip", "-4", "route", "get", "192.0.2.255"], capture_output=True, text=True).stdout.split()
    return out[out.index("src") + 1] if "src" in out else ""


@pytest.mark.skipif(not _host_address(), reason="the host has no IPv4 address on a default route")
def test_published_port_through_the_host_address_from_containers(engine: EngineDaemon) -> None:
    """Hairpin: a container reaches a published port (its own or another's) through the host's address."""
    httpd(engine, "--name", "hairpin", "-p", "18130:80")
    url = f"http://{_host_address()}:18130/"
    assert PAGE in fetch(url)
    probe = "for i in $(seq 50); do wget -qO- {} && exit 0; sleep 0.1; done; exit 1"
    assert PAGE in ok(engine, "run", "--rm", "busybox", "sh", "-c", probe.format(url))
    assert PAGE in ok(engine, "exec", "hairpin", "sh", "-c", probe.format(url))


def test_ipv6_networks(engine: EngineDaemon) -> None:
    ok(engine, "network", "create", "--ipv6", "--subnet", "fd00:beef:1::/64", "v6net")
    net = json.loads(ok(engine, "network", "inspect", "v6net"))[0]
    assert net["EnableIPv6"] is True and net["EnableIPv4"] is True
    assert [c["Subnet"] for c in net["IPAM"]["Config"]][1:] == ["fd00:beef:1::/64"]  # an IPv4 subnet first, picked
    httpd(engine, "--network", "v6net", "--name", "web6")
    ep = inspect(engine, "web6")["NetworkSettings"]["Networks"]["v6net"]
    address = ep["GlobalIPv6Address"]
    assert address.startswith("fd00:beef:1::") and ep["GlobalIPv6PrefixLen"] == 64
    assert ep["IPv6Gateway"] == "fd00:beef:1::1" and ep["IPAddress"]
    assert f"{address}/64" in ok(engine, "exec", "web6", "ip", "-6", "addr", "show", "eth0")
    assert address in ok(engine, "exec", "web6", "cat", "/etc/hosts")
    assert json.loads(ok(engine, "network", "inspect", "v6net"))[0]["Containers"][inspect(engine, "web6")["Id"]][
        "IPv6Address"] == f"{address}/64"
    out = ok(engine, "run", "--rm", "--network", "v6net", "busybox", "wget", "-qO-", f"http://[{address}]/")
    assert PAGE in out
    out = ok(engine, "run", "--rm", "--network", "v6net", "busybox", "nslookup", "-type=aaaa", "web6")
    assert address in out
    fixed = ok(engine, "run", "--rm", "--network", "v6net", "--ip6", "fd00:beef:1::99", "busybox", "ip", "-6", "addr")
    assert "fd00:beef:1::99/64" in fixed
    # libnetwork turns IPv6 off in a sandbox none of whose networks has it (loopback's ::1 too); a user's sysctl wins.
    flag = "/proc/sys/net/ipv6/conf/all/disable_ipv6"
    for mode in ("bridge", "none"):
        assert ok(engine, "run", "--rm", "--network", mode, "busybox", "sh", "-c", f"cat {flag}; ip -6 addr") == "1\n"
    assert ok(engine, "run", "--rm", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0", "busybox", "cat", flag) == "0\n"
    assert ok(engine, "exec", "web6", "cat", flag) == "0\n"
    # A running container without IPv6 connected to a network with it: its new interface gets its address.
    ok(engine, "run", "-d", "--name", "late6", "busybox", "sleep", "300")
    ok(engine, "network", "connect", "v6net", "late6")
    late = inspect(engine, "late6")["NetworkSettings"]["Networks"]["v6net"]["GlobalIPv6Address"]
    assert f"{late}/64" in ok(engine, "exec", "late6", "ip", "-6", "addr")
    ok(engine, "rm", "-f", "late6")

    ok(engine, "network", "create", "--ipv6", "v6auto")
    auto = [c["Subnet"] for c in json.loads(ok(engine, "network", "inspect", "v6auto"))[0]["IPAM"]["Config"]]
    assert auto[1].startswith("fd") and auto[1].endswith("::/64") and auto[1] != "fd00:beef:1::/64"

    for args, message in ((["run", "--rm", "--network", "v6auto", "--ip6", "fd00:beef:1::5", "busybox", "true"],
                           "user configured subnets"),  # dockerd's: the engine chose v6auto's subnet
                          (["run", "--rm", "--network", "v6net", "--ip6", "fd00:beef:2::5", "busybox", "true"],
                           "does not belong to the network's subnet"),
                          (["network", "create", "--subnet", "fd00:beef:2::/64", "nov6"], "needs EnableIPv6"),
                          (["network", "create", "--ipv6", "--subnet", "fd00:beef:1:0:1::/80", "clash"],
                           "overlaps"),
                          (["network", "create", "--ipv4=false", "--ipv6", "v6only"], "IPv6-only networks")):
        out = cli(engine, *args)
        assert out.returncode != 0 and message in out.stderr, (args, out.stderr)
    ok(engine, "rm", "-f", "web6")
    ok(engine, "network", "rm", "v6net", "v6auto")


def test_a_renamed_container_answers_to_its_new_name(engine: EngineDaemon) -> None:
    """dockerd: the network's DNS has the new name at once, and no longer the old one."""
    ok(engine, "network", "create", "rn1")
    ok(engine, "run", "-d", "--name", "rold", "--network", "rn1", "busybox", "sleep", "300")
    address = inspect(engine, "rold")["NetworkSettings"]["Networks"]["rn1"]["IPAddress"]
    ok(engine, "rename", "rold", "rnew")
    found = ok(engine, "run", "--rm", "--network", "rn1", "busybox", "sh", "-c",
               "nslookup rnew 127.0.0.11 | tail -n +3; nslookup rold 127.0.0.11 >/dev/null 2>&1 || echo gone")
    assert address in found and found.rstrip().endswith("gone"), found
    ok(engine, "rm", "-f", "rnew")
    ok(engine, "network", "rm", "rn1")


def test_the_hosts_network_takes_extra_hosts_and_dns_options(engine: EngineDaemon) -> None:
    out = ok(engine, "run", "--rm", "--network", "host", "--add-host", "db:10.1.2.3", "--dns-option", "ndots:2",
             "busybox", "cat", "/etc/hosts", "/etc/resolv.conf")
    assert "10.1.2.3\tdb\n" in out and "options ndots:2\n" in out
    plain = ok(engine, "run", "--rm", "--network", "host", "busybox", "cat", "/etc/hosts")
    assert plain == open("/etc/hosts").read()
    isolated = ok(engine, "run", "--rm", "--network", "none", "--dns", "192.0.2.1", "busybox", "cat", "/etc/resolv.conf")
    assert isolated.startswith("nameserver 192.0.2.1\n")
