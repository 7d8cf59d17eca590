"""Keys matched to model fields as Go's encoding/json matches them (engine/api/gofields.py)."""
from __future__ import annotations

from pydantic import BaseModel

from engine.api.gofields import go_keys


class Inner(BaseModel):
    Memory: int | None = None


class Outer(BaseModel):
    Name: str | None = None
    Sub: Inner | None = None
    Items: list[Inner] | None = None
    ByKey: dict[str, Inner] | None = None


def test_exact_names_win_and_other_cases_find_their_field_at_any_depth() -> None:
    body = {"name": "a", "sub": {"MEMORY": 1}, "items": [{"memory": 2}, 3], "bykey": {"k": {"Memory": 4}}}
    assert go_keys(Outer, body) == {"Name": "a", "Sub": {"Memory": 1}, "Items": [{"Memory": 2}, 3],
                                    "ByKey": {"k": {"Memory": 4}}}
    assert go_keys(Outer, {"Name": "x", "unknown": 1}) == {"Name": "x", "unknown": 1}


def test_extras_name_fields_a_model_keeps_unmodelled() -> None:
    assert go_keys(Outer, {"cpurealtimeruntime": 5}, {Outer: ["CpuRealtimeRuntime"]}) == {"CpuRealtimeRuntime": 5}
