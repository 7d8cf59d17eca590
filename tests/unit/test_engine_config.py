"""daemon.json and pyengined's flags: what is taken, in dockerd's words when it is not."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import config


def test_daemon_json_container_defaults_are_checked(tmp_path: Path) -> None:
    cfg = config.load(None, {"dns": ["10.0.0.53"], "dns_search": ["corp.test"], "ip": "127.0.0.1", "debug": True})
    assert (cfg.dns, cfg.ip, cfg.effective_log_level) == (["10.0.0.53"], "127.0.0.1", "debug")
    for flags, words in (({"dns": ["ns1"]}, "dns: IP address is not correctly formatted: ns1"),
                         ({"dns_search": ["a b"]}, "dns-search: a b is not a valid domain"),
                         ({"ip": "::1"}, "ip: ::1 is not an IPv4 address")):
        with pytest.raises(ValueError, match=words):
            config.load(None, flags)
    file = tmp_path / "daemon.json"
    for body, words in (({"default-cgroupns-mode": "none"}, "default cgroup namespace mode \\(none\\) is invalid"),
                        ({"live-restore": False}, "live-restore: false is not supported")):
        file.write_text(json.dumps(body))
        with pytest.raises(ValueError, match=words):
            config.load(str(file), {})


def test_storage_driver_and_exec_opts_are_taken_where_they_name_what_the_engine_does() -> None:
    cfg = config.load(None, {"storage_driver": "overlay2", "exec_opts": ["native.cgroupdriver=cgroupfs"]})
    assert (cfg.storage_driver, cfg.exec_opts) == ("overlay2", ["native.cgroupdriver=cgroupfs"])
    for flags, words in (({"storage_driver": "vfs"}, "storage-driver: vfs is not supported"),
                         ({"exec_opts": ["native.cgroupdriver=systemd"]},
                          "native.cgroupdriver option systemd not supported"),
                         ({"exec_opts": ["native.umask=normal"]}, "native.umask=normal is not supported")):
        with pytest.raises(ValueError, match=words):
            config.load(None, flags)


def test_dockerd_switches_are_taken_when_they_say_what_the_engine_does(tmp_path: Path) -> None:
    file = tmp_path / "daemon.json"
    file.write_text(json.dumps({"iptables": True, "ip-forward": True, "ip-masq": True, "icc": True,
                                "userland-proxy": False, "live-restore": True}))
    config.load(str(file), {})
    for body, words in (({"icc": False}, "icc: false is not supported: containers on a network reach each other"),
                        ({"userland-proxy": True}, "userland-proxy: true is not supported"),
                        ({"iptables": "yes"}, "iptables: Input should be a valid boolean")):
        file.write_text(json.dumps(body))
        with pytest.raises(ValueError, match=words):
            config.load(str(file), {})
