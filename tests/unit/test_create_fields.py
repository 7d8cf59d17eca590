"""Every create field of the v1.50 spec is honoured or refused with a 400 naming it; none is dropped."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.containers.fields import HONOURED, REFUSED, is_unset, refuse_unsupported
from engine.containers.options import parse
from engine.errors import InvalidArgument

SPEC = Path(__file__).resolve().parent.parent / "data" / "swagger-v1.50.yaml"
# The field-path prefix of each definition a create body is made of (HostConfig embeds Resources by allOf).
SECTIONS = {"ContainerConfig": "Config", "HostConfig": "HostConfig", "NetworkingConfig": "NetworkingConfig",
            "EndpointSettings": "EndpointSettings"}


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())["definitions"]


def _properties(definitions: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _properties(definitions, definitions[schema["$ref"].rsplit("/", 1)[-1]])
    out: dict[str, Any] = {}
    for part in schema.get("allOf", []):
        out.update(_properties(definitions, part))
    out.update(schema.get("properties") or {})
    return out


def _spec_fields(definitions: dict[str, Any]) -> set[str]:
    return {f"{prefix}.{name}" for definition, prefix in SECTIONS.items()
            for name in _properties(definitions, definitions[definition])}


def _in_spec(definitions: dict[str, Any], path: str) -> bool:
    prefix, *names = path.split(".")
    definition = next(d for d, p in SECTIONS.items() if p == prefix)
    schema: dict[str, Any] = definitions[definition]
    for name in names:
        if "items" in schema:
            schema = schema["items"]
        props = _properties(definitions, schema)
        if name not in props:
            return False
        schema = props[name]
    return True


def test_the_spec_defines_the_sections_walked(definitions: dict[str, Any]) -> None:
    assert {"Memory", "ShmSize", "Dns"} <= set(_properties(definitions, definitions["HostConfig"]))


def test_every_spec_field_is_honoured_or_refused(definitions: dict[str, Any]) -> None:
    top_level = {p for p in set(HONOURED) | set(REFUSED) if p.count(".") == 1}
    missing = _spec_fields(definitions) - top_level
    assert not missing, f"create fields in neither HONOURED nor REFUSED: {sorted(missing)}"


def test_every_listed_field_is_in_the_spec(definitions: dict[str, Any]) -> None:
    unknown = [p for p in sorted(set(HONOURED) | set(REFUSED)) if not _in_spec(definitions, p)]
    assert not unknown, f"listed but not in the v1.50 spec: {unknown}"


def test_no_field_is_both_honoured_and_refused() -> None:
    assert not set(HONOURED) & set(REFUSED)


@pytest.mark.parametrize("value", [None, "", 0, False, [], {}, [0, 0], {"Type": "", "Config": {}}, [{}]])
def test_zero_values_are_unset(value: Any) -> None:
    assert is_unset(value)


def _body_setting(path: str, value: Any) -> dict[str, Any]:
    prefix, *names = path.split(".")
    inner: Any = value
    for name in reversed(names):
        # HostConfig.Mounts is a list: a refused part of a mount is set on one of them.
        inner = {name: [{"Type": "volume", "Target": "/x", **inner}] if name == "Mounts" else inner}
    if prefix == "Config":
        return {"Image": "busybox", **inner}
    if prefix == "EndpointSettings":
        return {"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"net1": inner}}}
    return {"Image": "busybox", prefix: inner}


@pytest.mark.parametrize("path", sorted(REFUSED))
def test_a_refused_field_set_is_a_400_naming_it(path: str) -> None:
    with pytest.raises(InvalidArgument, match=rf"{path.rsplit('.', 1)[-1]}.* is not supported"):
        parse(_body_setting(path, ["x"] if path.endswith(("s", "Rules", "From")) else "x"))


@pytest.mark.parametrize("path", sorted(REFUSED))
def test_a_refused_field_left_at_its_zero_value_is_accepted(path: str) -> None:
    for zero in (None, "", 0, False, [], {}):
        refuse_unsupported(_body_setting(path, zero))


def test_the_clis_zero_valued_body_passes() -> None:
    parse({"Image": "busybox", "MacAddress": "", "HostConfig": {
        "MemorySwappiness": -1, "OomKillDisable": False, "VolumesFrom": None, "Links": None, "StorageOpt": {},
        "BlkioWeightDevice": [], "CpuRealtimePeriod": 0, "VolumeDriver": "", "Cgroup": "", "ConsoleSize": [0, 0],
        "LogConfig": {"Type": "", "Config": {}}, "Isolation": "", "UsernsMode": "", "Runtime": ""},
        "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Links": None, "MacAddress": "",
                                                            "IPAMConfig": {"LinkLocalIPs": []}}}}})


def test_fields_outside_the_spec_are_ignored_as_dockerd_does() -> None:
    parse({"Image": "busybox", "NoSuchField": ["x"], "HostConfig": {"NoSuchEither": 1}})
