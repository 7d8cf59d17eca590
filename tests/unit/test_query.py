"""Query parameters refused with a 400 naming them, whatever their size or shape (strconv.Atoi's rules)."""
from __future__ import annotations

import pytest

from engine.api.query import filters, integer
from engine.errors import InvalidArgument


@pytest.mark.parametrize("raw, value", [
    ("10", 10), ("-1", -1), ("+5", 5), ("007", 7), (str(2**63 - 1), 2**63 - 1), (str(-2**63), -2**63),
    ("0" * 5000 + "1", 1),
])
def test_integers_within_int64_are_read(raw: str, value: int) -> None:
    assert integer({"t": raw}, "t") == value


@pytest.mark.parametrize("raw", ["1" + "0" * 400, "1" * 5001, str(2**63), str(-2**63 - 1), "-" + "9" * 20])
def test_integers_beyond_int64_are_out_of_range(raw: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        integer({"t": raw}, "t")
    assert e.value.message == f"invalid value for t: {raw!r} is out of range"


@pytest.mark.parametrize("raw", ["x", "1.5", " 1", "1_000", "\u0665", "--1", "+"])
def test_what_atoi_would_not_parse_is_not_an_integer(raw: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        integer({"t": raw}, "t")
    assert e.value.message == f"invalid value for t: {raw!r} is not an integer"


@pytest.mark.parametrize("raw", ["[" * 3000 + "]" * 3000, '{"label":' * 3000, '{"label": [' + "1" * 5001 + "]}"])
def test_filters_past_what_the_decoder_takes_are_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid filter"):
        filters({"filters": raw})
