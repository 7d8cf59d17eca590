"""Request bodies fail in the words of Go's encoding/json, as dockerd's do (clients match on them)."""
from __future__ import annotations

import pytest

from engine.api.gojson import decode
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
