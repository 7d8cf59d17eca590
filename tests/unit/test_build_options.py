"""The build query's resource options: each honoured into the RUN steps' HostConfig or refused by name."""
from __future__ import annotations

import pytest
from multidict import MultiDict

from engine.builder.options import parse_options
from engine.errors import InvalidArgument


def test_cpusets_reach_the_run_steps() -> None:
    opts = parse_options(MultiDict({"cpusetcpus": "0", "cpusetmems": "0", "memory": "67108864"}),
                               experimental=False)
    assert opts.host_config == {"CpusetCpus": "0", "CpusetMems": "0", "Memory": 67108864}


@pytest.mark.parametrize("value", ["", "[]", "null"])
def test_no_security_options_is_fine(value: str) -> None:
    parse_options(MultiDict({"securityopt": value}), experimental=False)


def test_security_options_are_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match="securityopt"):
        parse_options(MultiDict({"securityopt": '["seccomp=unconfined"]'}), experimental=False)
