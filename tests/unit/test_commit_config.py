"""A commit body's Config, typed as create's: a wrong type is refused, never stored in the image."""
from __future__ import annotations

from typing import Any

import pytest

from engine.containers.options import commit_config
from engine.errors import InvalidArgument
from engine.images.commit import merge


@pytest.mark.parametrize(("body", "message"), [
    ({"Labels": "x"}, "cannot unmarshal string into Go struct field Config.Labels of type map[string]string"),
    ({"Labels": {"a": 1}}, "cannot unmarshal number 1 into Go struct field Config.Labels of type string"),
    ({"Env": 1}, "cannot unmarshal number 1 into Go struct field Config.Env of type []string"),
    ({"Env": [1]}, "cannot unmarshal number 1 into Go struct field Config.Env of type string"),
    ({"ExposedPorts": "x"}, "cannot unmarshal string into Go struct field Config.ExposedPorts of type map"),
    ({"ExposedPorts": [1]}, "cannot unmarshal array into Go struct field Config.ExposedPorts"),
    ({"Volumes": [1]}, "cannot unmarshal array into Go struct field Config.Volumes"),
    ({"Cmd": 5}, "cannot unmarshal number 5 into Go struct field Config.Cmd of type []string"),
    ({"Healthcheck": "x"}, "cannot unmarshal string into Go struct field Config.Healthcheck"),
    ({"User": 5}, "cannot unmarshal number 5 into Go struct field Config.User of type string"),
    ({"Tty": "x"}, "cannot unmarshal string into Go struct field Config.Tty of type bool"),
    ({"StopTimeout": 10**30}, "cannot unmarshal number 10{30} into Go struct field Config.StopTimeout of type int64"),
])
def test_wrong_types_are_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^json: " + message.replace("[", r"\[").replace("]", r"\]")
                       .replace("10{30}", "1" + "0" * 30)):
        commit_config(body)


def test_a_valid_body_is_kept_normalised() -> None:
    assert commit_config(None) is None
    assert commit_config({}) is None
    # The CLI's zero values are valid; a lone string Cmd is Docker's StrSlice, stored as a list.
    config = commit_config({"Cmd": "sh", "Env": None, "Tty": False, "Labels": {"a": "b"}, "Unknown": 1})
    assert config == {"Cmd": ["sh"], "Env": None, "Tty": False, "Labels": {"a": "b"}, "Unknown": 1}
    assert merge(config, {"Env": ["A=1"], "Cmd": ["true"]})["Cmd"] == ["sh"]
    with pytest.raises(InvalidArgument, match="container config object"):
        commit_config([1])
