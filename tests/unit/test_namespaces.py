"""dockerd's namespace defaults, decided without a daemon: IPC modes and the network sysctls."""
from __future__ import annotations

import pytest

from engine.containers.namespaces import ipc_mode, network_sysctls, runtime_ipc_mode
from engine.errors import InvalidArgument

PROBED = {"ping_group_range": True, "unprivileged_port_start": True}
DEFAULTS = {"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"}


@pytest.mark.parametrize("given, shown, runtime", [
    (None, "private", None), ("", "private", None), ("private", "private", None),
    ("shareable", "shareable", None), ("none", "none", "none"), ("host", "host", "host"),
    ("container:db", "container:db", None),
])
def test_ipc_modes(given: str | None, shown: str, runtime: str | None) -> None:
    assert ipc_mode(given) == shown and runtime_ipc_mode(shown) == runtime


@pytest.mark.parametrize("bad", ["bogus", "container:", "Host"])
def test_ipc_modes_dockerd_refuses(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=f"invalid IPC mode: {bad}"):
        ipc_mode(bad)


def test_network_sysctls_only_for_a_namespace_of_its_own() -> None:
    assert network_sysctls(True, {}, PROBED) == DEFAULTS
    assert network_sysctls(True, {"net.ipv4.ping_group_range": "1 1"}, PROBED) == {
        **DEFAULTS, "net.ipv4.ping_group_range": "1 1"}
    assert network_sysctls(False, {"kernel.shmmax": "1"}, PROBED) == {"kernel.shmmax": "1"}  # host, container:
    assert network_sysctls(True, {}, {}) == {}  # a kernel without them gets none
