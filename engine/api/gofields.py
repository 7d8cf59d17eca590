"""JSON object keys matched to struct fields as dockerd's Go decoder matches them.

encoding/json takes a key naming a field exactly, else one naming it in another case (`hostconfig`,
`memory`, `name`): a hand-written client that gets the case wrong still gets what it asked for from
dockerd. Bodies are put in the models' spelling before anything reads them, so that the checks on
the raw body (refused fields, API-version rules) and the models see the same keys.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel


def _models_in(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model a field holds, and how: "one", "list" (of them) or "map" (string to them); (None, "") if none."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "one"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            model, how = _models_in(arg)
            if model is not None:
                return model, how
    elif origin is list and args:
        model, how = _models_in(args[0])
        return (model, "list") if how == "one" else (None, "")
    elif origin is dict and len(args) == 2:
        model, how = _models_in(args[1])
        return (model, "map") if how == "one" else (None, "")
    return None, ""


Extras = Mapping[type[BaseModel], Iterable[str]]


def go_keys(model: type[BaseModel], body: dict[str, Any], extras: Extras | None = None) -> dict[str, Any]:
    """`body` with its keys in `model`'s spelling, nested models' too; `extras` names, per model, the fields of
    dockerd's struct it keeps as extras. A key matching no field stays; of two keys for one field the later wins."""
    extras = extras or {}
    names = {*model.model_fields, *extras.get(model, ())}
    folded = {name.lower(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = key if key in names else folded.get(key.lower(), key)
        field = model.model_fields.get(name)
        if field is not None:
            value = _nested(field.annotation, value, extras)
        out[name] = value
    return out


def _nested(annotation: Any, value: Any, extras: Extras) -> Any:
    inner, how = _models_in(annotation)
    if inner is None:
        return value
    if how == "one" and isinstance(value, dict):
        return go_keys(inner, value, extras)
    if how == "list" and isinstance(value, list):
        return [go_keys(inner, v, extras) if isinstance(v, dict) else v for v in value]
    if how == "map" and isinstance(value, dict):
        return {k: go_keys(inner, v, extras) if isinstance(v, dict) else v for k, v in value.items()}
    return value
