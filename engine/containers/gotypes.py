"""The Go types dockerd decodes a create body into, as pydantic types: what falls outside them is a 400 there."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

# Strict, as dockerd's JSON decoding is: "512" is not a number, 1 is not a boolean, 1.0 is not an integer.
OPEN = ConfigDict(extra="allow", strict=True)
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
UInt16 = Annotated[int, Field(ge=0, le=2**16 - 1)]
UInt32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
UInt64 = Annotated[int, Field(ge=0, le=2**64 - 1)]


def strslice(v: Any) -> Any:
    """Docker's StrSlice: a lone string is a one-element list."""
    return [v] if isinstance(v, str) else v
