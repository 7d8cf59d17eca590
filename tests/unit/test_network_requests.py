"""Network create and connect bodies of the wrong shape are 400s naming the field, never a crash further in."""
from __future__ import annotations

from typing import Any

import pytest

from engine.api.routers.networks import Connect, NetworkCreate, _model, _refuse_unsupported
from engine.errors import InvalidArgument


@pytest.mark.parametrize("value", ["x", -1, True, [1]])
def test_config_from_must_be_a_config_reference(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="^invalid network config: ConfigFrom: "):
        _model(NetworkCreate, {"Name": "n", "ConfigFrom": value}, "network config")


def test_config_from_a_network_is_refused_as_unsupported() -> None:
    body = {"Name": "n", "ConfigFrom": {"Network": "base"}}
    _model(NetworkCreate, body, "network config")
    with pytest.raises(InvalidArgument, match="config-only networks"):
        _refuse_unsupported(body)


@pytest.mark.parametrize("field, value", [
    ("Links", -1), ("Links", 1.5), ("Links", True), ("Links", [1]), ("Links", "a:b"),
    ("MacAddress", 1), ("IPAMConfig", "10.0.0.2"), ("IPAMConfig", {"IPv4Address": ["10.0.0.2"]}),
])
def test_endpoint_config_fields_are_typed(field: str, value: Any) -> None:
    with pytest.raises(InvalidArgument, match=f"^invalid connect request: EndpointConfig.{field}"):
        _model(Connect, {"Container": "c", "EndpointConfig": {field: value}}, "connect request")


def test_a_well_formed_endpoint_config_reaches_the_service_as_before() -> None:
    req = _model(Connect, {"Container": "c", "EndpointConfig": {
        "Links": ["db:db"], "Aliases": ["web"], "MacAddress": "02:42:ac:11:00:02",
        "IPAMConfig": {"IPv4Address": "10.0.0.2"}, "DriverOpts": {"k": "v"}}}, "connect request")
    cfg = req.EndpointConfig.model_dump()
    assert cfg["Links"] == ["db:db"] and cfg["Aliases"] == ["web"] and cfg["DriverOpts"] == {"k": "v"}
    assert cfg["IPAMConfig"]["IPv4Address"] == "10.0.0.2" and cfg["MacAddress"] == "02:42:ac:11:00:02"
