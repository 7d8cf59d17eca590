"""docker ps filters the way dockerd reads them: network ID prefixes, a port without a protocol as tcp,
exposed ports of running containers only, isolation not looked at on Linux."""
from __future__ import annotations

import pytest

from engine.containers.filters import select
from engine.containers.store import Container
from engine.errors import InvalidArgument

NET_ID = "5f" * 32


def _container(name: str, exposed: list[str], running: bool) -> Container:
    c = Container(id=(name * 64)[:64], name=name, created=len(name), image="busybox",
                  image_ref="docker.io/library/busybox:latest", image_id="sha256:" + "cd" * 32, path="sh", args=[],
                  config={"ExposedPorts": {p: {} for p in exposed}}, host_config={})
    if running:
        c.state.start(pid=1, at=0)
    return c


def _names(f: dict[str, list[str]], containers: list[Container]) -> list[str]:
    return [c.name for c in select(containers, f, lambda ref: containers[0], True, 0,
                                   networks_of=lambda c: {"mynet", NET_ID}, mounts_of=lambda c: [],
                                   published_of=lambda c: [])]


def test_a_network_is_found_by_the_start_of_its_id() -> None:
    cs = [_container("a", [], True)]
    assert _names({"network": [NET_ID[:12]]}, cs) == ["a"]
    assert _names({"network": ["mynet"]}, cs) == ["a"]
    assert _names({"network": ["myn"]}, cs) == []  # names match whole, as dockerd's


def test_expose_means_tcp_without_a_protocol_and_running_containers_only() -> None:
    cs = [_container("udp", ["9000/udp"], True), _container("tcp", ["9000/tcp"], True),
          _container("created", ["9000/tcp"], False)]
    assert _names({"expose": ["9000"]}, cs) == ["tcp"]
    assert _names({"expose": ["9000/udp"]}, cs) == ["udp"]
    with pytest.raises(InvalidArgument, match='parsing "99999": value out of range'):
        _names({"expose": ["1-99999"]}, cs)


def test_isolation_is_not_looked_at() -> None:
    cs = [_container("a", [], True), _container("bb", [], False)]
    assert sorted(_names({"isolation": ["hyperv"]}, cs)) == ["a", "bb"]


def test_a_bad_is_task_is_told_with_its_values_as_dockerd_lists_them() -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'is-task=\[maybe\]'$"):
        _names({"is-task": ["maybe"]}, [_container("a", [], True)])
