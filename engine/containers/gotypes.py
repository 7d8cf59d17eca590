"""The Go types dockerd decodes a create body into, as pydantic types: what falls outside them is a 400 there."""
from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.errors import InvalidArgument

# Strict, as dockerd's JSON decoding is: "512" is not a number, 1 is not a boolean, 1.0 is not an integer.
OPEN = ConfigDict(extra="allow", strict=True)
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
UInt16 = Annotated[int, Field(ge=0, le=2**16 - 1)]
UInt32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
UInt64 = Annotated[int, Field(ge=0, le=2**64 - 1)]


def strslice(v: Any) -> Any:
    """Docker's StrSlice: a lone string is a one-element list."""
    return [v] if isinstance(v, str) else v


_SIZED = {2**63 - 1: "int64", 2**16 - 1: "uint16", 2**32 - 1: "uint32", 2**64 - 1: "uint64"}


def _upper_bound(metadata: Any) -> Any:
    """The `le` of an Annotated int's constraints, as Field() or as pydantic keeps them on a field."""
    for item in metadata:
        found = getattr(item, "le", None) or _upper_bound(getattr(item, "metadata", ()))
        if found is not None:
            return found
    return None


def _go_type(tp: Any) -> str:
    origin, args = get_origin(tp), [a for a in get_args(tp) if a is not type(None)]
    if origin is Annotated:
        return _SIZED.get(_upper_bound(tp.__metadata__), "") or _go_type(args[0])
    if origin in (Union, UnionType) and args:
        return _go_type(args[0])
    if origin is list and args:
        return "[]" + _go_type(args[0])
    if origin is dict and len(args) == 2:
        return f"map[{_go_type(args[0])}]{_go_type(args[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp.__name__
    return {str: "string", bool: "bool", int: "int64", float: "float64"}.get(tp, "interface {}")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"  # Go names the number: the usual fault is its size
    kinds: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return kinds.get(type(value), "null")


def _element(tp: Any) -> Any:
    """What a list or dict of type `tp` (perhaps optional) holds."""
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) in (Union, UnionType) and args:
        return _element(args[0])
    return args[-1] if get_origin(tp) in (list, dict) and args else Any


def unmarshal_error(e: ValidationError, model: type[BaseModel], struct: str) -> InvalidArgument:
    """dockerd's words for a body its JSON decoder refuses: what was sent, into which field, of which Go type."""
    err = e.errors()[0]
    tp: Any = model
    names: list[str] = []
    for part in err["loc"]:
        if isinstance(tp, type) and issubclass(tp, BaseModel) and str(part) in tp.model_fields:
            names.append(str(part))
            field = tp.model_fields[str(part)]
            tp = field.annotation if not field.metadata else Annotated[field.annotation, *field.metadata]
        else:
            tp = _element(tp)
    where = ".".join([struct, *names])
    return InvalidArgument(f"json: cannot unmarshal {_json_kind(err['input'])} into Go struct field {where} "
                           f"of type {_go_type(tp)}")
