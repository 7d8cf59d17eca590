"""Scenarios of the Docker SDK's own integration tests that behaved otherwise than on dockerd 20.10, each shown
behaving as there (docs/compatibility.md, session 16)."""
from __future__ import annotations

import docker

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def _read_frame(sock) -> bytes:
    """One frame of a multiplexed stream: its payload (b"" when the stream ends first)."""
    head = b""
    while len(head) < 8:
        chunk = sock.recv(8 - len(head))
        if not chunk:
            return b""
        head += chunk
    size = int.from_bytes(head[4:], "big")
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            break
        body += chunk
    return body


def test_attaching_before_the_start_gets_the_first_output(engine) -> None:
    api = docker.APIClient(base_url=engine.host)
    for _ in range(20):
        c = api.create_container("busybox", ["echo", "hello"], host_config=api.create_host_config(network_mode="none"))
        sock = api.attach_socket(c, {"stdout": 1, "stream": 1, "logs": 1})
        sock._sock.settimeout(20)
        api.start(c)
        assert _read_frame(sock._sock) == b"hello\n"
        sock.close()
        api.remove_container(c, force=True)


def test_commit_and_pause_right_after_the_exit(engine) -> None:
    api = docker.APIClient(base_url=engine.host)
    for _ in range(10):
        c = api.create_container("busybox", ["touch", "/test"],
                                 host_config=api.create_host_config(network_mode="none"))
        api.start(c)
        image = api.commit(c, changes=["EXPOSE 8000"])  # pauses a container it finds running
        assert api.inspect_image(image["Id"])["Config"]["ExposedPorts"] == {"8000/tcp": {}}
        api.remove_container(c, force=True)
        api.remove_image(image["Id"])
    c = api.create_container("busybox", ["true"], host_config=api.create_host_config(network_mode="none"))
    api.start(c)
    api.wait(c)
    try:
        api.pause(c)
        raise AssertionError("paused an exited container")
    except docker.errors.APIError as e:
        assert e.status_code == 409 and f"Container {c['Id']} is not running" in str(e)
    api.remove_container(c, force=True)


def test_a_moved_image_name_lists_the_containers_image_by_id(engine) -> None:
    sdk = docker.DockerClient(base_url=engine.host)
    ok(engine, "tag", "busybox", "moving:1")
    c = sdk.containers.create("moving:1", "true", network_mode="none")
    assert sdk.api.containers(all=True, filters={"id": c.id})[0]["Image"] == "moving:1"
    first = sdk.images.get("moving:1").id
    ok(engine, "commit", c.id, "moving:1")  # the name now names another image
    listed = sdk.api.containers(all=True, filters={"id": c.id})[0]
    assert (listed["Image"], listed["ImageID"]) == (first, first)
    ok(engine, "rm", c.id)
    ok(engine, "rmi", "moving:1")


def test_stats_network_counters_and_first_sample(engine) -> None:
    api = docker.APIClient(base_url=engine.host)
    for mode in ("bridge", "none"):
        c = api.create_container("busybox", ["sleep", "60"], host_config=api.create_host_config(network_mode=mode))
        api.start(c)
        stats = api.stats(c, stream=False, one_shot=True)
        assert stats["precpu_stats"] == {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                                       "usage_in_usermode": 0},
                                         "throttling_data": {"periods": 0, "throttled_periods": 0,
                                                             "throttled_time": 0}}
        assert stats["cpu_stats"]["online_cpus"] >= 1 and stats["cpu_stats"]["system_cpu_usage"] > 0
        # dockerd's shape from the cgroups: the CPU split, all eight blkio lists, the memory.stat map.
        assert {"usage_in_kernelmode", "usage_in_usermode"} <= set(stats["cpu_stats"]["cpu_usage"])
        assert len(stats["blkio_stats"]) == 8 and stats["blkio_stats"]["io_service_bytes_recursive"] is not None
        assert {"total_inactive_file", "inactive_file"} & set(stats["memory_stats"]["stats"])
        if mode == "none":
            assert "networks" not in stats
        else:
            assert set(stats["networks"]) == {"eth0"}
            assert stats["networks"]["eth0"]["rx_packets"] >= 0 and "tx_bytes" in stats["networks"]["eth0"]
        api.remove_container(c, force=True)


def test_log_config_shows_what_was_configured(engine) -> None:
    api = docker.APIClient(base_url=engine.host)
    c = api.create_container("busybox", ["true"], host_config=api.create_host_config(network_mode="none"))
    assert api.inspect_container(c)["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    api.remove_container(c)


def test_update_conflicts_name_the_container(engine) -> None:
    api = docker.APIClient(base_url=engine.host)
    c = api.create_container("busybox", ["true"],
                             host_config=api.create_host_config(network_mode="none", mem_limit="64m",
                                                                memswap_limit="96m"))
    try:
        api.update_container(c, mem_limit="128m")
        raise AssertionError("updated past the swap limit")
    except docker.errors.APIError as e:
        assert e.status_code == 409
        assert str(e.explanation).startswith(f"Cannot update container {c['Id']}: Memory limit should be smaller")
    api.remove_container(c)
