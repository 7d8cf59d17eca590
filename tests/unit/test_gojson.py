"""Request bodies fail in the words of Go's encoding/json, as dockerd's do (clients match on them)."""
from __future__ import annotations

import pytest

from engine.api.gojson import MAX_DEPTH, decode
from engine.errors import InvalidArgument


@pytest.mark.parametrize("raw, message", [
    (b"", "invalid JSON: got EOF while reading request body"),
    (b" \n", "invalid JSON: got EOF while reading request body"),
    (b"x", "invalid JSON: invalid character 'x' looking for beginning of value"),
    (b"{", "invalid JSON: unexpected EOF"),
    (b'{"a":1', "invalid JSON: unexpected EOF"),
    (b'{"a" 1}', "invalid JSON: invalid character '1' after object key"),
    (b"{a}", "invalid JSON: invalid character 'a' looking for beginning of object key string"),
    (b'{"a":1,}', "invalid JSON: invalid character '}' looking for beginning of object key string"),
    (b'{"a":1 "b":2}', "invalid JSON: invalid character '\"' after object key:value pair"),
    (b"[1 2]", "invalid JSON: invalid character '2' after array element"),
    (b'"\x01"', "invalid JSON: invalid character '\\x01' in string literal"),
    (b'"\\q"', "invalid JSON: invalid character 'q' in string escape code"),
    (b'"\\u12G4"', "invalid JSON: invalid character 'G' in \\u hexadecimal character escape"),
    (b"trux", "invalid JSON: invalid character 'x' in literal true (expecting 'e')"),
    (b"nul", "invalid JSON: unexpected EOF"),
    (b"-x", "invalid JSON: invalid character 'x' in numeric literal"),
    (b"1.x", "invalid JSON: invalid character 'x' after decimal point in numeric literal"),
    (b"1e+x", "invalid JSON: invalid character 'x' in exponent of numeric literal"),
    (b'{"a":NaN}', "invalid JSON: invalid character 'N' looking for beginning of value"),
    (b"'", "invalid JSON: invalid character '\\'' looking for beginning of value"),
    (b"{} x", "unexpected content after JSON"),
])
def test_errors_are_gos(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        decode(raw)
    assert str(e.value.message) == message


def test_values_decode_as_json_does() -> None:
    assert decode(b' {"a": [1, -2.5e3, true, null, "\\u00e9"]} \n') == {"a": [1, -2500.0, True, None, "é"]}
    assert decode(b"{} }") == {}  # Decoder.More stops at a closing bracket
    assert decode(b'"\xff"') == "\ufffd"  # invalid UTF-8 is replaced, not refused


@pytest.mark.parametrize("opener, closer", [(b"[", b"]"), (b'{"a":', b"}")])
def test_nesting_beyond_the_limit_is_refused_not_recursed(opener: bytes, closer: bytes) -> None:
    assert decode(opener * MAX_DEPTH + b"1" + closer * MAX_DEPTH) is not None
    for depth in (MAX_DEPTH + 1, 3000, 100_000):
        with pytest.raises(InvalidArgument) as e:
            decode(opener * depth + closer * depth)
        assert e.value.message == f"invalid JSON: invalid character '{opener[:1].decode()}' exceeded max depth"
    with pytest.raises(InvalidArgument, match="unexpected EOF"):
        decode(opener * MAX_DEPTH)  # an unclosed input ends before the limit is passed


def test_containers_close_as_gos_scanner_says() -> None:
    assert decode(b'[[], {}, [1, [2]], {"a": {"b": []}}]') == [[], {}, [1, [2]], {"a": {"b": []}}]
    with pytest.raises(InvalidArgument, match=r"invalid character '\]' looking for beginning of value"):
        decode(b"[1,]")
    with pytest.raises(InvalidArgument, match=r"invalid character '\}' after array element"):
        decode(b'[{"a":[1}]')


@pytest.mark.parametrize("literal", [b"1" * 5001, b"-" + b"9" * 400, b"1e400", b"-2.5E+309", b"1" * 400 + b".5"])
def test_numbers_no_go_type_holds_are_refused(literal: bytes) -> None:
    with pytest.raises(InvalidArgument) as e:
        decode(b'{"Name": ' + literal + b"}")
    assert e.value.message.startswith(f"json: cannot unmarshal number {literal[:24].decode()}")
    assert e.value.message.endswith(": value out of range")
    assert len(e.value.message) < 100


def test_syntax_errors_come_before_range_errors() -> None:
    with pytest.raises(InvalidArgument, match="invalid character 'x'"):
        decode(b"[1e400, x]")


def test_large_numbers_within_float64_decode() -> None:
    big = "9" * 308
    assert decode(big.encode()) == int(big)
    assert decode(b"1.7e308") == 1.7e308
    assert decode(b"1e-400") == 0.0  # underflow is not an error in Go either


def test_unpaired_surrogate_escapes_decode_as_the_replacement_character() -> None:
    assert decode(b'{"\\uD800k": ["\\ud800", "a\\udfffb", "\\ud800\\ud800\\udc00"]}') == \
        {"\ufffdk": ["\ufffd", "a\ufffdb", "\ufffd\U00010000"]}
    assert decode(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert decode(b'"\\\\ud800"') == "\\ud800"  # an escaped backslash, not an escape
