"""Address and port decisions of the engine's network service, and the /etc files it writes."""
from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from engine.errors import Conflict, InvalidArgument
from engine.networks import etcfiles, ipam
from engine.networks.model import PublishedPort
from engine.networks.ports import PortTable, docker_ports, ephemeral_ports, requested

Net = ipaddress.IPv4Network


def test_pick_subnet_skips_taken_pools() -> None:
    assert ipam.pick_subnet([]) == Net("172.17.0.0/16")
    assert ipam.pick_subnet([Net("172.17.0.0/16"), Net("172.18.5.0/24")]) == Net("172.19.0.0/16")
    every = [Net(f"172.{i}.0.0/16") for i in range(17, 32)]
    assert ipam.pick_subnet(every) == Net("192.168.0.0/20")


def test_pick_subnet_from_the_daemons_pools() -> None:
    pools = (ipam.Pool.of("10.5.0.0/23", 24), ipam.Pool.of("10.9.0.0/16", 16))
    assert ipam.pick_subnet([Net("10.5.0.0/24")], pools) == Net("10.5.1.0/24")
    assert ipam.pick_subnet([Net("10.5.0.0/23")], pools) == Net("10.9.0.0/16")
    with pytest.raises(Conflict):
        ipam.pick_subnet([Net("10.0.0.0/8")], pools)
    for base, size, words in (("10.0.0.0/16", 8, "invalid pools size: 8"), ("nope", 24, "invalid base pool"),
                              ("10.0.0.0/16", 31, "invalid pools size: 31")):
        with pytest.raises(InvalidArgument, match=words):
            ipam.Pool.of(base, size)


def test_overlap_is_a_conflict_naming_the_other_network() -> None:
    with pytest.raises(Conflict, match="overlaps.*of network app"):
        ipam.check_free(Net("10.1.0.0/16"), [("app", Net("10.1.2.0/24"))])
    ipam.check_free(Net("10.2.0.0/16"), [("app", Net("10.1.0.0/16"))])


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "nonsense", "10.0.0.0/31", "fd00::/64"])
def test_bad_subnets(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        ipam.parse_subnet(bad)


def test_gateway_and_range_checks() -> None:
    net = Net("10.9.0.0/24")
    assert str(ipam.gateway_for(net, None)) == "10.9.0.1"
    assert str(ipam.gateway_for(net, "10.9.0.254")) == "10.9.0.254"
    for bad in ("10.9.1.1", "10.9.0.0", "10.9.0.255", "x"):
        with pytest.raises(InvalidArgument):
            ipam.gateway_for(net, bad)
    with pytest.raises(InvalidArgument):
        ipam.ip_range_in(net, "10.8.0.0/25")
    assert ipam.ip_range_in(net, "10.9.0.128/25") == Net("10.9.0.128/25")


def test_allocate_in_order_skipping_gateway_taken_and_outside_range() -> None:
    net = Net("10.9.0.0/29")
    assert ipam.allocate(net, "10.9.0.1", None, []) == "10.9.0.2"
    assert ipam.allocate(net, "10.9.0.1", None, ["10.9.0.2", "10.9.0.3"]) == "10.9.0.4"
    assert ipam.allocate(net, "10.9.0.1", Net("10.9.0.4/30"), []) == "10.9.0.4"
    with pytest.raises(Conflict, match="no available"):
        ipam.allocate(net, "10.9.0.1", None, [f"10.9.0.{i}" for i in range(2, 7)])


def test_static_addresses() -> None:
    net = Net("10.9.0.0/24")
    assert ipam.check_static(net, "10.9.0.1", "10.9.0.50", []) == "10.9.0.50"
    with pytest.raises(Conflict):
        ipam.check_static(net, "10.9.0.1", "10.9.0.50", ["10.9.0.50"])
    with pytest.raises(Conflict):
        ipam.check_static(net, "10.9.0.1", "10.9.0.1", [])
    with pytest.raises(InvalidArgument):
        ipam.check_static(net, "10.9.0.1", "10.10.0.5", [])


def test_port_specs() -> None:
    got = requested(["80/tcp"], {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
                                 "53/udp": [{"HostPort": ""}], "9000-9002/tcp": [{"HostPort": "19000-19002"}]},
                    publish_all=False)
    assert {"ip": "127.0.0.1", "host": 18080, "host_count": 1, "port": 80, "count": 1, "proto": "tcp"} in got
    assert {"ip": "", "host": 0, "host_count": 1, "port": 53, "count": 1, "proto": "udp"} in got
    assert {"ip": "", "host": 19000, "host_count": 3, "port": 9000, "count": 3, "proto": "tcp"} in got
    assert requested(["80/tcp", "443/tcp"], {"80/tcp": [{"HostPort": "8080"}]}, publish_all=True)[1]["port"] == 443
    for bad in ({"80/sctp": None}, {"0/tcp": None}, {"70000/tcp": None}, {"80/tcp": [{"HostPort": "x"}]},
                {"80/tcp": [{"HostIp": "nope", "HostPort": "1"}]}, {"9000-9002/tcp": [{"HostPort": "1-2"}]}):
        with pytest.raises(InvalidArgument):
            requested([], bad, publish_all=False)


def test_neighbouring_port_bindings_become_one_range() -> None:
    # What the docker CLI sends for -p 127.0.0.1:19000-19002:9000-9002 -p 7000:7000/udp -p 9003:9004.
    bindings = {f"900{i}/tcp": [{"HostIp": "127.0.0.1", "HostPort": f"1900{i}"}] for i in range(3)}
    bindings |= {"7000/udp": [{"HostPort": "7000"}], "9004/tcp": [{"HostPort": "9003"}]}
    assert requested([], bindings, publish_all=False) == [
        {"ip": "127.0.0.1", "host": 19000, "host_count": 3, "port": 9000, "count": 3, "proto": "tcp"},
        {"ip": "", "host": 7000, "host_count": 1, "port": 7000, "count": 1, "proto": "udp"},
        {"ip": "", "host": 9003, "host_count": 1, "port": 9004, "count": 1, "proto": "tcp"}]
    # Only fixed bindings that continue each other on both sides, on the same address and protocol, are joined.
    apart = {"80/tcp": [{"HostPort": "8080"}], "81/tcp": [{"HostPort": "8082"}], "82/tcp": [{"HostPort": ""}],
             "83/tcp": [{"HostPort": "8083"}], "84/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8084"}],
             "85/udp": [{"HostIp": "127.0.0.1", "HostPort": "8085"}]}
    assert [w["count"] for w in requested([], apart, publish_all=False)] == [1] * 6
    joined = PublishedPort(host_ip="127.0.0.1", host_port=19000, container_port=9000, protocol="tcp", count=3)
    view = docker_ports([joined], [])
    assert view == {f"900{i}/tcp": [{"HostIp": "127.0.0.1", "HostPort": f"1900{i}"}] for i in range(3)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_table_conflicts_name_the_holder_and_release_frees() -> None:
    t = PortTable()
    port = _free_port()
    want = [{"ip": "127.0.0.1", "host": port, "host_count": 1, "port": 80, "count": 1, "proto": "tcp"}]
    got = t.allocate("c1", want, lambda cid: f"name-of-{cid}")
    assert got[0].host_port == port
    with pytest.raises(Conflict, match=f"0.0.0.0:{port}.*already allocated.*name-of-c1"):
        t.allocate("c2", [{**want[0], "ip": ""}], lambda cid: f"name-of-{cid}")
    # Another address of the same port is free; udp is another table.
    t.allocate("c3", [{**want[0], "ip": "127.0.0.2"}], str)
    t.allocate("c4", [{**want[0], "proto": "udp"}], str)
    t.release("c1")
    t.allocate("c2", want, str)


def test_port_held_by_another_program_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(Conflict, match="address already in use"):
            PortTable().allocate("c", [{"ip": "127.0.0.1", "host": port, "host_count": 1, "port": 80, "count": 1,
                                        "proto": "tcp"}], str)


def test_ephemeral_and_docker_view() -> None:
    t = PortTable()
    got = t.allocate("c", [{"ip": "", "host": 0, "host_count": 1, "port": 80, "count": 1, "proto": "tcp"}], str)
    assert got[0].host_port in ephemeral_ports()
    view = docker_ports(got, ["80/tcp", "443/tcp"])
    assert view == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(got[0].host_port)}], "443/tcp": None}


def test_ephemeral_ports_are_the_hosts_range(tmp_path: Path) -> None:
    (tmp_path / "range").write_text("32768\t60999\n")
    assert ephemeral_ports(str(tmp_path / "range")) == range(32768, 61000)
    for bad in ("", "1 2 3", "60999 32768", "0 100"):
        (tmp_path / "range").write_text(bad)
        assert ephemeral_ports(str(tmp_path / "range")) == range(49153, 65536)
    assert ephemeral_ports(str(tmp_path / "missing")) == range(49153, 65536)


def test_etc_files(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\noptions edns0\n")
    web = etcfiles.EtcConfig(hostname="web")
    assert etcfiles.resolv_conf(web, [], host) == "nameserver 10.0.0.2\nsearch example.org\noptions edns0\n"
    assert etcfiles.resolv_conf(web, ["172.18.0.1"], host).startswith("search example.org\nnameserver 172.18.0.1\n")
    host.write_text("nameserver 127.0.0.1\n")
    assert "nameserver 8.8.8.8" in etcfiles.resolv_conf(web, [], host)
    hosts = etcfiles.hosts(web, ["172.18.0.2"], None)
    assert hosts.startswith("127.0.0.1\tlocalhost\n") and hosts.endswith("172.18.0.2\tweb\n")


def test_dns_options_and_extra_hosts(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 10.0.0.2\nsearch example.org\noptions edns0\n")
    etc = etcfiles.EtcConfig.of("c" * 64, {"Hostname": "web"}, {
        "Dns": ["1.1.1.1", "9.9.9.9"], "DnsSearch": ["a.test", "b.test"], "DnsOptions": ["ndots:2", "timeout:3"],
        "ExtraHosts": ["db:10.1.2.3", "gw:host-gateway", "v6:::1", "new=10.9.9.9"]})
    # A file libnetwork builds (anything given) has its search line first.
    assert etcfiles.resolv_conf(etc, [], host) == ("search a.test b.test\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n"
                                                   "options ndots:2 timeout:3\n")
    # A user network's resolver stays the first nameserver: the container still finds the others by name.
    assert etcfiles.resolv_conf(etc, ["172.18.0.1"], host).startswith(
        "search a.test b.test\nnameserver 172.18.0.1\nnameserver 1.1.1.1\n")
    cleared = etcfiles.EtcConfig(hostname="web", dns_search=(".",))
    assert "search" not in etcfiles.resolv_conf(cleared, [], host)
    hosts = etcfiles.hosts(etc, ["172.17.0.2"], "172.17.0.1")
    assert hosts.endswith("10.1.2.3\tdb\n172.17.0.1\tgw\n::1\tv6\n10.9.9.9\tnew\n172.17.0.2\tweb\n")
    with pytest.raises(ValueError):
        etcfiles.split_extra_host("nohost")


def test_the_hosts_network_takes_extra_hosts_and_dns_options(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\nsearch example.org\n")
    etc = etcfiles.EtcConfig(hostname="h", dns_options=("ndots:2",))
    # On the host's network its loopback resolver answers: it stays.
    assert etcfiles.resolv_conf(etc, [], host, host_network=True) == ("search example.org\nnameserver 127.0.0.53\n"
                                                                      "options ndots:2\n")
    etcfiles.copy_from_host(tmp_path / "c", etcfiles.EtcConfig(hostname="h", extra_hosts=(("db", "10.1.2.3"),
                                                                                           ("gw", "host-gateway"))),
                            "172.17.0.1")
    assert (tmp_path / "c" / "hosts").read_text().endswith("10.1.2.3\tdb\n172.17.0.1\tgw\n")
    assert (tmp_path / "c" / "resolv.conf").read_text() == open("/etc/resolv.conf").read()


def test_the_daemons_dns_defaults_fill_each_kind_a_container_leaves_unset() -> None:
    defaults = etcfiles.DnsDefaults(dns=("10.0.0.53",), search=("corp.test",), options=("timeout:3",))
    own = etcfiles.EtcConfig(hostname="h", dns=("1.1.1.1",))
    assert defaults.fill(own) == etcfiles.EtcConfig(hostname="h", dns=("1.1.1.1",), dns_search=("corp.test",),
                                                    dns_options=("timeout:3",))
    assert etcfiles.DnsDefaults().fill(own) is own and not etcfiles.DnsDefaults().any()


def test_one_container_port_takes_a_free_port_of_a_host_range() -> None:
    wanted = requested([], {"81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18130-18135"}]}, publish_all=False)
    t = PortTable()
    first = t.allocate("c1", wanted, str)[0]
    second = t.allocate("c2", wanted, str)[0]
    assert 18130 <= first.host_port <= 18135 and second.host_port != first.host_port
