"""The create plan and the host-limit checks: Docker's rules for a new container, with no daemon."""
from __future__ import annotations

import pytest

from engine.containers.health import command, config_of
from engine.containers.hostlimits import discard_unsupported
from engine.containers.images import Image
from engine.containers.options import parse
from engine.containers.plan import plan
from engine.containers.resources import UpdateRequest, merged
from engine.errors import InvalidArgument

CID = "ab" * 32
ALL = {"memory_limit": True, "swap_limit": True, "memory_reservation": True, "cpu_shares": True, "cpu_cfs": True,
       "cpuset": True, "pids_limit": True, "blkio_weight": True}
IMAGE = Image(ref="docker.io/library/busybox:latest", id="sha256:" + "c" * 64,
              config={"Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["PATH=/bin", "A=image"],
                      "WorkingDir": "/srv", "User": "nobody", "Volumes": {"/data": {}}})


def test_the_process_is_dockers_merge_of_request_and_image() -> None:
    p = plan(parse({"Image": "busybox", "Cmd": ["run"], "Env": ["A=given", "B=1"]}), IMAGE, CID, ALL)
    assert (p.path, p.args) == ("/entry", ["run"])
    assert p.options["args"] == ["/entry", "run"]
    # dockerd's merge: the request's variables first, then the image's it does not name.
    assert p.options["env"] == ["A=given", "B=1", "PATH=/bin"]
    assert (p.options["cwd"], p.options["user"]) == ("/srv", "nobody")
    assert p.hostname == CID[:12] and p.config["Hostname"] == CID[:12]
    assert p.image_volumes == {"/data": {}} and p.warnings == []


def test_an_entrypoint_in_the_request_drops_the_images_cmd() -> None:
    p = plan(parse({"Image": "busybox", "Entrypoint": ["sh"]}), IMAGE, CID, ALL)
    assert (p.path, p.args, p.config["Cmd"]) == ("sh", [], None)
    cleared = plan(parse({"Image": "busybox", "Entrypoint": [""], "Cmd": ["echo", "hi"]}), IMAGE, CID, ALL)
    assert (cleared.path, cleared.args) == ("echo", ["hi"])
    # An empty Entrypoint drops the image's and keeps its Cmd, as dockerd's merge does.
    empty = plan(parse({"Image": "busybox", "Entrypoint": []}), IMAGE, CID, ALL)
    assert (empty.path, empty.args) == ("default", [])


def test_container_network_mode_is_read_once() -> None:
    p = plan(parse({"Image": "busybox", "HostConfig": {"NetworkMode": "container:web"}}), IMAGE, CID, ALL)
    assert (p.network.mode, p.network.joins) == ("container:web", "web")
    with pytest.raises(InvalidArgument, match="EndpointsConfig"):
        plan(parse({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": []}}), IMAGE, CID, ALL)


def test_the_requests_config_is_merged_over_the_images_as_dockerd_merges_it() -> None:
    image = Image(ref=IMAGE.ref, id=IMAGE.id, config={
        **IMAGE.config, "ExposedPorts": {"80/tcp": {}}, "Shell": ["/bin/ash", "-c"],
        "Healthcheck": {"Test": ["CMD-SHELL", "probe"], "Interval": 30_000_000_000, "Retries": 3}})
    p = plan(parse({"Image": "busybox", "ExposedPorts": {"443/tcp": {}}, "Volumes": {"/more": {}},
                    "Healthcheck": {"Interval": 5_000_000_000}}), image, CID, ALL)
    assert p.config["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}}
    assert p.config["Volumes"] == {"/data": {}, "/more": {}}
    # Only what the request sets replaces the image's: `--health-interval` alone keeps the image's probe.
    assert p.config["Healthcheck"] == {"Test": ["CMD-SHELL", "probe"], "Interval": 5_000_000_000, "Retries": 3}
    assert command(p.config["Healthcheck"]["Test"], config_of(p.config)["Shell"]) == ["/bin/ash", "-c", "probe"]
    off = plan(parse({"Image": "busybox", "Healthcheck": {"Test": ["NONE"]}}), image, CID, ALL)
    assert config_of(off.config) is None


@pytest.mark.parametrize("body, message", [
    ({"HostConfig": {"NetworkMode": "container:web", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}},
     "port publishing and the container type network mode"),
    ({"HostConfig": {"NetworkMode": "container:web", "PublishAllPorts": True}}, "port publishing"),
    ({"ExposedPorts": {"80/tcp": {}}, "HostConfig": {"NetworkMode": "container:web"}}, "port exposing"),
    ({"Hostname": "h", "HostConfig": {"NetworkMode": "container:web"}}, "hostname and the network mode"),
    ({"HostConfig": {"NetworkMode": "host"}, "NetworkingConfig": {"EndpointsConfig": {"host": {"Aliases": ["a"]}}}},
     "network-scoped alias"),
    ({"HostConfig": {"NetworkMode": "none"},
      "NetworkingConfig": {"EndpointsConfig": {"none": {"IPAMConfig": {"IPv4Address": "10.0.0.2"}}}}},
     "user specified IP address"),
    ({"Healthcheck": {"Test": "CMD true"}}, "Healthcheck.Test must be an array of strings"),
    ({"Healthcheck": {"Test": ["true"]}}, "unknown healthcheck type 'true'"),
    ({"HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}}, "AutoRemove"),
    ({"Labels": {"io.pyengine.health-on-failure": "explode"}}, "health-on-failure"),
    ({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, "invalid restart policy"),
    ({"ExposedPorts": {"80/tcp": {}}, "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "x"}]}}}, "port"),
])
def test_dockers_checks_refuse_a_plan(body: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        plan(parse({"Image": "busybox", **body}), IMAGE, CID, ALL)


def test_ports_on_the_hosts_network_are_discarded_with_dockerds_warning() -> None:
    p = plan(parse({"Image": "busybox", "HostConfig": {"NetworkMode": "host",
                                                       "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}}),
             IMAGE, CID, ALL)
    assert p.warnings == ["Published ports are discarded when using host network mode"]


def test_limits_the_kernel_lacks_are_discarded_with_dockerds_warnings() -> None:
    no_blkio = {**ALL, "blkio_weight": False, "swap_limit": False}
    p = plan(parse({"Image": "busybox", "HostConfig": {"BlkioWeight": 300, "Memory": 64 << 20,
                                                       "MemorySwap": 128 << 20}}), IMAGE, CID, no_blkio)
    assert p.warnings == [
        "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without "
        "swap.",
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."]
    assert (p.options["blkio_weight"], p.options["memory_swap"], p.options["memory"]) == (None, None, 64 << 20)


def test_an_update_loses_only_what_the_kernel_lacks() -> None:
    req = UpdateRequest(BlkioWeight=300, CpuShares=512)
    assert discard_unsupported(req, {**ALL, "blkio_weight": False}) == [
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."]
    assert (req.BlkioWeight, req.CpuShares) == (None, 512)
    with pytest.raises(InvalidArgument, match="NanoCPUs can not be set"):
        discard_unsupported(UpdateRequest(NanoCpus=10**9), {**ALL, "cpu_cfs": False})
    unlimited = UpdateRequest(PidsLimit=-1)
    assert discard_unsupported(unlimited, {}) == [] and unlimited.PidsLimit == -1


def test_an_update_checks_a_reservation_against_a_limit_it_sends_too() -> None:
    """dockerd checks the update's own values: a reservation over the limit already set is taken."""
    current = {"Memory": 80 * 2**20, "MemorySwap": -1}
    host_config, _ = merged(current, UpdateRequest(MemoryReservation=200 * 2**20))
    assert host_config["MemoryReservation"] == 200 * 2**20
    with pytest.raises(InvalidArgument, match="can not be less than memory reservation"):
        merged(current, UpdateRequest(Memory=80 * 2**20, MemoryReservation=200 * 2**20))


@pytest.mark.parametrize("healthcheck, message", [
    ({"Test": ["CMD", "true"], "Interval": 1000}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Timeout": -5}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "StartPeriod": 999_999}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"Test": ["CMD", "true"], "Interval": "5s"}, "Healthcheck.Interval must be an integer"),
])
def test_healthchecks_are_checked_as_dockerd_does(healthcheck: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        plan(parse({"Image": "busybox", "Healthcheck": healthcheck}), IMAGE, CID, ALL)


def test_a_command_is_required_but_may_be_empty() -> None:
    bare = Image(ref=IMAGE.ref, id=IMAGE.id, config={})
    with pytest.raises(InvalidArgument, match="^No command specified$"):
        plan(parse({"Image": "busybox"}), bare, CID, ALL)
    assert plan(parse({"Image": "busybox", "Cmd": [""]}), bare, CID, ALL).options["args"] == [""]


@pytest.mark.parametrize(("asked", "kept"), [(1, 2), (-5, 2), (1024, 1024), (6291456, 262144)])
def test_cpu_shares_past_the_kernels_bounds_are_brought_within_them_at_create(asked: int, kept: int) -> None:
    p = plan(parse({"Image": "busybox", "HostConfig": {"CpuShares": asked}}), IMAGE, CID, ALL)
    assert (p.options["cpu_shares"], p.host_config["CpuShares"], p.warnings) == (kept, kept, [])
