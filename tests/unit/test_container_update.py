"""docker update's merge of a request into a stored HostConfig: only what is set changes, dockerd's checks."""
from __future__ import annotations

import pytest

from engine.containers.execs import parse_model
from engine.containers.resources import UpdateRequest, merged, runtime_resources
from engine.errors import Conflict, InvalidArgument

MIB = 1024 * 1024
# What the CLI sends for `docker update --memory 64m X`: the whole Resources struct, zeros for the rest.
CLI_BODY = {"CpuShares": 0, "Memory": 64 * MIB, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
            "BlkioWeightDevice": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpusetCpus": "",
            "CpusetMems": "", "Devices": None, "KernelMemory": 0, "MemoryReservation": 0, "MemorySwap": 0,
            "Ulimits": None, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}}


def update(hc: dict, **body) -> dict:
    return merged(hc, UpdateRequest.model_validate(body))[0]


def test_only_what_is_set_changes() -> None:
    hc = {"Memory": 32 * MIB, "MemorySwap": 128 * MIB, "CpuShares": 512, "PidsLimit": 50,
          "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}
    new, warnings = merged(hc, UpdateRequest.model_validate(CLI_BODY))
    assert new == {**hc, "Memory": 64 * MIB} and warnings == []
    assert hc["Memory"] == 32 * MIB  # the stored one is left alone until the update went through
    assert update(hc, PidsLimit=0)["PidsLimit"] == 0  # given: lifts the limit
    assert update(hc, PidsLimit=-1)["PidsLimit"] == 0  # any "unlimited" is kept as 0, as dockerd keeps it
    assert runtime_resources(update(hc, PidsLimit=-1))["pids_limit"] == 0
    assert runtime_resources({})["pids_limit"] is None  # never given: left alone
    assert update(hc, RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 2})["RestartPolicy"] == {
        "Name": "on-failure", "MaximumRetryCount": 2}
    assert runtime_resources(update({}, NanoCpus=500_000_000, CpusetMems="0")) == {
        "memory": None, "memory_reservation": None, "memory_swap": None, "cpu_shares": None, "cpu_quota": None,
        "cpu_period": None, "nano_cpus": 500_000_000, "cpuset_cpus": None, "cpuset_mems": "0", "pids_limit": None,
        "blkio_weight": None}


def test_unsupported_fields_are_warnings() -> None:
    _, warnings = merged({}, UpdateRequest.model_validate({**CLI_BODY, "MemorySwap": -1, "KernelMemory": 8 * MIB}))
    assert warnings == ["Specifying a kernel memory limit is deprecated and will be removed in a future release."]
    with pytest.raises(InvalidArgument, match="^CpuRealtimeRuntime, Ulimits cannot be updated on this engine$"):
        merged({}, UpdateRequest.model_validate({"CpuRealtimeRuntime": 1000, "Ulimits": [{"Name": "nofile"}]}))


@pytest.mark.parametrize(("hc", "body", "error", "message"), [
    ({}, {"Memory": MIB}, InvalidArgument, "Minimum memory limit allowed is 6MB"),
    ({}, {"MemoryReservation": MIB}, InvalidArgument, "Minimum memory reservation allowed is 6MB"),
    ({}, {"Memory": 64 * MIB, "MemoryReservation": 128 * MIB}, InvalidArgument, "can not be less than memory"),
    ({}, {"MemorySwap": 64 * MIB}, InvalidArgument, "always set the Memory limit"),
    ({}, {"Memory": 64 * MIB, "MemorySwap": 32 * MIB}, InvalidArgument, "should be larger than memory"),
    ({"Memory": 32 * MIB, "MemorySwap": 64 * MIB}, {"Memory": 128 * MIB}, Conflict, "update the memoryswap"),
    # No swap limit yet (none, or unlimited): any memory limit is above it.
    ({}, {"Memory": 64 * MIB}, Conflict, "update the memoryswap"),
    ({"Memory": 32 * MIB, "MemorySwap": -1}, {"Memory": 16 * MIB}, Conflict, "update the memoryswap"),
    ({"CpuQuota": 50_000}, {"NanoCpus": 10**9}, Conflict, "CPU Quota has already been set"),
    ({"NanoCpus": 10**9}, {"CpuPeriod": 50_000}, Conflict, "NanoCPUs has already been set"),
    ({}, {"NanoCpus": 10**9, "CpuQuota": 50_000}, InvalidArgument, "Nano CPUs and CPU Quota cannot both be set"),
    ({}, {"NanoCpus": 10**15}, InvalidArgument, "Range of CPUs is from 0.01"),
    ({}, {"CpuPeriod": 10}, InvalidArgument, "CPU cfs period can not be less than 1ms"),
    ({}, {"CpuQuota": 10}, InvalidArgument, "CPU cfs quota can not be less than 1ms"),
    ({}, {"BlkioWeight": 5}, InvalidArgument, "Range of blkio weight is from 10 to 1000"),
    ({}, {"CpuShares": 6291456}, InvalidArgument, "Range of CPU shares is from 2 to 262144"),
    ({}, {"CpuShares": 1}, InvalidArgument, "Range of CPU shares is from 2 to 262144"),
    ({}, {"RestartPolicy": {"Name": "sometimes"}}, InvalidArgument, "invalid restart policy 'sometimes'"),
    ({}, {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}, InvalidArgument, "maximum retry count cannot be used with restart policy 'always'"),
    ({"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}}, Conflict, "AutoRemove is enabled"),
])
def test_refusals(hc: dict, body: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        update(hc, **body)


@pytest.mark.parametrize("body", [
    {"CpuShares": True}, {"Memory": "64m"}, {"NanoCpus": 1.5}, {"Memory": 10**30}, {"CpuQuota": 10**30},
    {"PidsLimit": 2**64}, {"CpuPeriod": -(2**63) - 1}, {"CpusetCpus": 0}, {"RestartPolicy": {"MaximumRetryCount": True}},
])
def test_values_outside_their_go_types_are_refused_as_create_refuses_them(body: dict) -> None:
    with pytest.raises(InvalidArgument, match=next(iter(body))):
        parse_model(UpdateRequest, body)
