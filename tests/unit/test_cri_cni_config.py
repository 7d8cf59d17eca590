"""The CRI's CNI layer without the network: conf dir rules, results, plugin stdin/env, errors, the cache.

Plugins here are small shell scripts that log how they were called, so the order of ADD/DEL, the
injected fields and the environment are checked as a plugin sees them.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from runtime.cri.cni import config
from runtime.cri.cni.cache import Attachment, AttachmentCache
from runtime.cri.cni.defaults import default_conflist, write_default_conflist
from runtime.cri.cni.errors import InvalidNetworkConfig, NetworkNotReady, PluginError
from runtime.cri.cni.invoke import Invoker, RuntimeConf, plugin_env, plugin_stdin
from runtime.cri.cni.manager import CNIManager, PodNetwork, PortMapping
from runtime.cri.cni.result import parse_result
from runtime.errors import FailedPrecondition, InvalidArgument

CONFLIST = {"cniVersion": "1.0.0", "name": "podnet", "plugins": [
    {"type": "bridge", "bridge": "br0", "ipam": {"type": "host-local"}},
    {"type": "portmap", "capabilities": {"portMappings": True}},
]}


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def test_first_file_in_lexical_order_wins(tmp_path: Path) -> None:
    _write(tmp_path / "20-other.conflist", {**CONFLIST, "name": "other"})
    _write(tmp_path / "10-pod.conflist", CONFLIST)
    _write(tmp_path / "05-readme.txt", "not a config")
    net = config.load_default_network(str(tmp_path))
    assert (net.name, net.cni_version, net.types) == ("podnet", "1.0.0", ["bridge", "portmap"])
    assert net.capabilities() == {"portMappings"}
    assert net.source.endswith("10-pod.conflist")


def test_a_conf_file_is_wrapped_as_a_list_of_one(tmp_path: Path) -> None:
    _write(tmp_path / "10-single.conf", {"cniVersion": "0.4.0", "name": "one", "type": "bridge"})
    net = config.load_default_network(str(tmp_path))
    assert (net.name, net.cni_version, net.types) == ("one", "0.4.0", ["bridge"])
    assert net.raw["plugins"][0]["type"] == "bridge"


def test_a_conflist_saved_as_conf_has_no_type(tmp_path: Path) -> None:
    _write(tmp_path / "10-list.conf", CONFLIST)
    with pytest.raises(NetworkNotReady, match="network type not found"):
        config.load_default_network(str(tmp_path))


def test_no_config_is_network_not_ready_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(NetworkNotReady) as info:
        config.load_default_network(str(tmp_path / "missing"))
    assert info.value.reason == "NetworkPluginNotReady"
    assert "no network config found" in info.value.detail


@pytest.mark.parametrize("doc, words", [
    ("{", "invalid JSON"),
    ({"cniVersion": "1.0.0", "plugins": [{"type": "x"}]}, "name is required"),
    ({"cniVersion": "1.0.0", "name": "bad name", "plugins": [{"type": "x"}]}, "invalid network name"),
    ({"name": "n", "plugins": [{"type": "x"}]}, "cniVersion is required"),
    ({"cniVersion": "9.9.9", "name": "n", "plugins": [{"type": "x"}]}, "not supported"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": []}, "non-empty list"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"bridge": "x"}]}, "has no type"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../sbin/x"}]}, "a name, not a path"),
    ({"cniVersion": "1.0.0", "name": "n", "disableCheck": "yes", "plugins": [{"type": "x"}]}, "boolean"),
])
def test_broken_conflists_are_refused(doc: object, words: str) -> None:
    data = doc.encode() if isinstance(doc, str) else json.dumps(doc).encode()
    with pytest.raises(InvalidNetworkConfig, match=words):
        config.parse_conflist(data, "x.conflist")


async def test_manager_status_names_a_missing_plugin(tmp_path: Path) -> None:
    _write(tmp_path / "10-pod.conflist", CONFLIST)
    status = await CNIManager(str(tmp_path / "state"), conf_dir=str(tmp_path), bin_dirs=[str(tmp_path)]).status()
    assert not status.ready and status.reason == "NetworkPluginNotReady"
    assert "'bridge'" in status.message


def test_results_of_each_version() -> None:
    v1 = parse_result({"cniVersion": "1.0.0",
                       "interfaces": [{"name": "cni0"}, {"name": "veth1"},
                                      {"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/ns"}],
                       "ips": [{"address": "fd00::5/64", "interface": 2},
                               {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2},
                               {"address": "10.1.0.1/24", "interface": 0}],
                       "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.1.0.1"]}})
    assert [ip.ip for ip in v1.ips_on("eth0")] == ["10.1.0.5", "fd00::5"]
    assert v1.ips_on("eth0")[0].gateway == "10.1.0.1"
    v04 = parse_result({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.2.0.3/16"}]})
    assert [ip.ip for ip in v04.ips_on("eth0")] == ["10.2.0.3"]
    v02 = parse_result({"cniVersion": "0.2.0", "ip4": {"ip": "10.3.0.4/24", "gateway": "10.3.0.1"}})
    assert [(ip.ip, ip.gateway) for ip in v02.ips_on("eth0")] == [("10.3.0.4", "10.3.0.1")]
    with pytest.raises(InvalidNetworkConfig, match="invalid address"):
        parse_result({"cniVersion": "1.0.0", "ips": [{"address": "nonsense"}]})


def test_plugin_stdin_injects_name_version_prev_result_and_declared_capabilities() -> None:
    net = config.conflist_from_dict(CONFLIST)
    rt = RuntimeConf("pod1", "/ns", "eth0", (("IgnoreUnknown", "1"),),
                     {"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}],
                      "dns": {"servers": ["1.1.1.1"]}})
    bridge = json.loads(plugin_stdin(net, net.plugins[0], None, rt))
    assert bridge["name"] == "podnet" and bridge["cniVersion"] == "1.0.0"
    assert "prevResult" not in bridge and "runtimeConfig" not in bridge
    portmap = json.loads(plugin_stdin(net, net.plugins[1], {"cniVersion": "1.0.0", "ips": []}, rt))
    assert portmap["prevResult"] == {"cniVersion": "1.0.0", "ips": []}
    assert portmap["runtimeConfig"] == {"portMappings": rt.capability_args["portMappings"]}


def test_plugin_env_and_cni_args() -> None:
    pod = PodNetwork("abc123", "web", "default", "uid-1", "/run/ns/abc123")
    rt = RuntimeConf(pod.id, pod.netns, "eth0", pod.cni_args())
    env = plugin_env("ADD", rt, ["/a", "/b"])
    assert env["CNI_COMMAND"] == "ADD" and env["CNI_CONTAINERID"] == "abc123"
    assert env["CNI_NETNS"] == "/run/ns/abc123" and env["CNI_IFNAME"] == "eth0"
    assert env["CNI_PATH"] == "/a:/b"
    assert env["CNI_ARGS"] == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
                               "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=uid-1")
    with pytest.raises(InvalidNetworkConfig):
        RuntimeConf("abc", "/ns", "eth0", (("K8S_POD_NAME", "a;b"),))
    with pytest.raises(InvalidNetworkConfig):
        RuntimeConf("abc", "/ns", "an-interface-name-too-long")


async def test_port_mappings_need_a_plugin_that_takes_them(tmp_path: Path) -> None:
    pod = PodNetwork("p1", "web", "default", "u", "/ns",
                     (PortMapping(80, 0), PortMapping(8080, 18080, "TCP", "127.0.0.1")))
    assert pod.capability_args() == {"portMappings": [
        {"hostPort": 18080, "containerPort": 8080, "protocol": "tcp", "hostIP": "127.0.0.1"}]}
    _write(tmp_path / "10-bare.conflist", {**CONFLIST, "plugins": CONFLIST["plugins"][:1]})
    manager = CNIManager(str(tmp_path / "state"), conf_dir=str(tmp_path), bin_dirs=[str(tmp_path)])
    _fake_plugin(tmp_path, "bridge", tmp_path / "log")
    _fake_plugin(tmp_path, "loopback", tmp_path / "log")
    with pytest.raises(FailedPrecondition, match="portMappings capability"):
        await manager.setup(pod)


def _fake_plugin(bin_dir: Path, name: str, log: Path, fail: str = "") -> None:
    """A plugin that appends `<name> <command> <stdin>` to `log` and answers a 1.0.0 result."""
    failing = (f'if [ "$CNI_COMMAND" = "{fail}" ]; then '
               'echo \'{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no bridge"}\'; exit 1; fi\n'
               if fail else "")
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'input=$(cat); echo "{name} $CNI_COMMAND $CNI_IFNAME $CNI_NETNS $input" >> {log}\n'
        + failing +
        'if [ "$CNI_COMMAND" = ADD ]; then '
        f'echo \'{{"cniVersion":"1.0.0","interfaces":[{{"name":"eth0","sandbox":"x"}}],'
        f'"ips":[{{"address":"10.9.0.{len(name)}/24","interface":0}}]}}\'; fi\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


async def test_add_in_order_del_in_reverse_with_prev_result(tmp_path: Path) -> None:
    log = tmp_path / "log"
    for name in ("bridge", "portmap", "loopback"):
        _fake_plugin(tmp_path, name, log)
    conf = tmp_path / "conf"
    conf.mkdir()
    _write(conf / "10-pod.conflist", CONFLIST)
    manager = CNIManager(str(tmp_path / "state"), conf_dir=str(conf), bin_dirs=[str(tmp_path)])
    assert (await manager.status()).ready
    ns = "/proc/self/ns/net"  # alive for as long as the test runs; the plugins are fakes
    status = await manager.setup(PodNetwork("pod1", "web", "default", "u", ns,
                                            (PortMapping(80, 8080),)))
    assert status.ip == "10.9.0.7"  # the last plugin's (portmap's) result is the list's
    calls = [line.split(" ", 4) for line in log.read_text().splitlines()]
    assert [(c[0], c[1], c[2]) for c in calls] == [
        ("loopback", "ADD", "lo"), ("bridge", "ADD", "eth0"), ("portmap", "ADD", "eth0")]
    portmap_in = json.loads(calls[2][4])
    assert portmap_in["prevResult"]["ips"][0]["address"] == "10.9.0.6/24"
    assert portmap_in["runtimeConfig"]["portMappings"][0]["hostPort"] == 8080
    assert manager.attached() == {"pod1"}

    log.write_text("")
    await manager.teardown("pod1")
    calls = [line.split(" ", 4) for line in log.read_text().splitlines()]
    assert [(c[0], c[1], c[3]) for c in calls] == [
        ("portmap", "DEL", ns), ("bridge", "DEL", ns), ("loopback", "DEL", ns)]
    assert json.loads(calls[0][4])["prevResult"]["ips"][0]["address"] == "10.9.0.7/24"
    assert manager.attached() == set()
    log.write_text("")
    await manager.teardown("pod1")
    assert log.read_text() == ""


async def test_a_plugin_error_is_typed_and_the_setup_undone(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _fake_plugin(tmp_path, "loopback", log)
    _fake_plugin(tmp_path, "bridge", log)
    _fake_plugin(tmp_path, "portmap", log, fail="ADD")
    conf = tmp_path / "conf"
    conf.mkdir()
    _write(conf / "10-pod.conflist", CONFLIST)
    manager = CNIManager(str(tmp_path / "state"), conf_dir=str(conf), bin_dirs=[str(tmp_path)])
    with pytest.raises(PluginError) as info:
        await manager.setup(PodNetwork("pod2", "web", "default", "u", "/proc/self/ns/net"))
    assert (info.value.plugin, info.value.cni_code, info.value.msg) == ("portmap", 7, "bad config")
    assert "no bridge" in str(info.value) and "invalid network config" in str(info.value)
    commands = [tuple(line.split(" ", 2)[:2]) for line in log.read_text().splitlines()]
    assert commands[-3:] == [("portmap", "DEL"), ("bridge", "DEL"), ("loopback", "DEL")]
    assert manager.attached() == set()


async def test_stderr_is_the_message_when_stdout_holds_no_error(tmp_path: Path) -> None:
    script = tmp_path / "broken"
    script.write_text("#!/bin/sh\necho 'cannot open things' >&2\nexit 3\n")
    script.chmod(0o755)
    net = config.conflist_from_dict({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "broken"}]})
    with pytest.raises(PluginError, match="cannot open things"):
        await Invoker([str(tmp_path)]).add(net, RuntimeConf("c1", "/ns", "eth0"))


def test_cache_round_trip_and_listing(tmp_path: Path) -> None:
    cache = AttachmentCache(str(tmp_path))
    net = config.conflist_from_dict(CONFLIST, "/etc/cni/net.d/10-pod.conflist")
    rt = RuntimeConf("pod-a", "/ns/a", "eth0", (("K8S_POD_NAME", "a"),), {"portMappings": []})
    cache.save(Attachment(net, rt))
    cache.save(Attachment(config.LOOPBACK, RuntimeConf("pod-ab", "/ns/ab", "lo")))
    cache.save(Attachment(net, rt, {"cniVersion": "1.0.0", "ips": []}))
    loaded = cache.load("podnet", "pod-a", "eth0")
    assert loaded is not None and loaded.rt == rt and loaded.network == net
    assert loaded.result == {"cniVersion": "1.0.0", "ips": []}
    assert [e.rt.container_id for e in cache.entries("pod-a")] == ["pod-a"]
    assert cache.container_ids() == {"pod-a", "pod-ab"}
    (tmp_path / "junk-pod-a-eth1").write_text("{")
    assert len(cache.entries()) == 2
    cache.delete(loaded)
    assert cache.load("podnet", "pod-a", "eth0") is None
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_default_conflist_is_loadable_and_never_promiscuous(tmp_path: Path) -> None:
    doc = default_conflist("k8s-pods", "cni0", "10.88.0.0/16", "/var/lib/pyengine/cni-ipam")
    bridge = doc["plugins"][0]
    assert bridge["hairpinMode"] and "promiscMode" not in bridge
    assert bridge["ipam"]["dataDir"] == "/var/lib/pyengine/cni-ipam"
    path = write_default_conflist(str(tmp_path), "k8s-pods", "cni0", "10.88.0.0/16", "/x", firewall=False)
    net = config.load_default_network(str(tmp_path))
    assert net.source == str(path) and net.types == ["bridge", "portmap"]
    with pytest.raises(InvalidNetworkConfig):
        default_conflist("pods", "a-bridge-name-too-long", "10.88.0.0/16", "/x")
    dual = default_conflist("pods", "cni0", "10.88.0.0/16", "/x", ipv6_subnet="fd88::/64")["plugins"][0]["ipam"]
    assert dual["ranges"] == [[{"subnet": "10.88.0.0/16"}], [{"subnet": "fd88::/64"}]]
    assert dual["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]
    with pytest.raises(ValueError):
        default_conflist("pods", "cni0", "10.88.0.0/16", "/x", ipv6_subnet="10.89.0.0/16")


async def test_before_0_4_0_del_gets_no_prev_result_and_check_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _fake_plugin(tmp_path, "bridge", log)
    net = config.conflist_from_dict({"cniVersion": "0.3.1", "name": "old", "plugins": [{"type": "bridge"}]})
    invoker = Invoker([str(tmp_path)])
    rt = RuntimeConf("c1", "/proc/self/ns/net", "eth0")
    result = await invoker.add(net, rt)
    await invoker.delete(net, rt, result)
    del_stdin = json.loads(log.read_text().splitlines()[-1].split(" ", 4)[4])
    assert del_stdin["cniVersion"] == "0.3.1" and "prevResult" not in del_stdin
    with pytest.raises(InvalidNetworkConfig, match="does not support the CHECK command"):
        await invoker.check(net, rt, result)


async def test_setup_refuses_a_missing_namespace_and_bad_ports(tmp_path: Path) -> None:
    for name in ("bridge", "portmap", "loopback"):
        _fake_plugin(tmp_path, name, tmp_path / "log")
    conf = tmp_path / "conf"
    conf.mkdir()
    _write(conf / "10-pod.conflist", CONFLIST)
    manager = CNIManager(str(tmp_path / "state"), conf_dir=str(conf), bin_dirs=[str(tmp_path)])
    with pytest.raises(FailedPrecondition, match="does not exist"):
        await manager.setup(PodNetwork("p1", "web", "default", "u", str(tmp_path / "gone")))
    for bad in (PortMapping(80, 8080, "icmp"), PortMapping(80, 70000), PortMapping(80, 8080, "tcp", "localhost")):
        with pytest.raises(InvalidArgument):
            await manager.setup(PodNetwork("p1", "web", "default", "u", "/proc/self/ns/net", (bad,)))
    assert not (tmp_path / "log").exists()
