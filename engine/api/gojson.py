"""Request bodies decoded as dockerd's Go decoder reads them, failing in its words.

Clients match on dockerd's messages ("invalid JSON: invalid character 'x' looking for beginning of
value", "invalid JSON: unexpected EOF", "invalid JSON: got EOF while reading request body"), so a body
is first walked by a scanner with the states of Go's encoding/json (a json.Decoder reads one value and
stops), then handed to Python's parser. Go is also stricter than Python: NaN, Infinity and control
characters in strings are syntax errors there, a number no Go number type holds is refused, and an
unpaired surrogate escape decodes as U+FFFD.
"""
from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
from typing import Any

from engine.errors import InvalidArgument

_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = b'bfnrt\\/"'
_GO_ESCAPES = {0x07: r"\a", 0x08: r"\b", 0x0C: r"\f", 0x0A: r"\n", 0x0D: r"\r", 0x09: r"\t", 0x0B: r"\v",
               0x5C: r"\\"}
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
# Go refuses nesting beyond 10000; here the limit is what Python can take. json.loads recurses in C
# once per level on the interpreter's recursion budget (1000, shared with the handler's own frames),
# and pydantic-core refuses to serialise beyond about 255 levels, counting those of the record a body
# is kept in. No Docker API body comes near 128 levels.
MAX_DEPTH = 128
# From this length a literal without exponent may be beyond float64, which bounds every Go number type
# (and json.loads refuses integers of more than 4300 digits).
_LONG_LITERAL = len(str(int(sys.float_info.max)))
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Syntax(Exception):
    pass


class _EOF(Exception):
    """The input ended inside a value (io.ErrUnexpectedEOF) or before one (io.EOF)."""


def _quote(c: int) -> str:
    """Go's quoteChar: the byte as strconv.Quote would show it, in single quotes."""
    if c == ord("'"):
        return r"'\''"
    if c == ord('"'):
        return "'\"'"
    if c in _GO_ESCAPES:
        return f"'{_GO_ESCAPES[c]}'"
    if c < 0x20 or c == 0x7F:
        return f"'\\x{c:02x}'"
    ch = chr(c)  # Go's string(byte) is the rune of that value
    if c >= 0x80 and unicodedata.category(ch).startswith(("C", "Z")):
        return f"'\\u{c:04x}'"
    return f"'{ch}'"


class _Scanner:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.out_of_range: bytes | None = None

    def _peek(self) -> int:
        if self.pos >= len(self.data):
            raise _EOF
        return self.data[self.pos]

    def _next(self) -> int:
        c = self._peek()
        self.pos += 1
        return c

    def _error(self, c: int, context: str) -> _Syntax:
        return _Syntax(f"invalid character {_quote(c)} {context}")

    def skip_space(self) -> int:
        while (c := self._peek()) in _SPACE:
            self.pos += 1
        return c

    def value(self) -> None:
        """One value, its containers walked with a stack of their brackets rather than by recursion."""
        open_: list[int] = []
        while True:
            c = self.skip_space()
            self.pos += 1
            if c == ord("{") or c == ord("["):
                if len(open_) == MAX_DEPTH:
                    raise self._error(c, "exceeded max depth")
                open_.append(c)
                if self.skip_space() != (ord("}") if c == ord("{") else ord("]")):
                    if c == ord("{"):
                        self._key()
                    continue
                self.pos += 1
                open_.pop()
            else:
                self._scalar(c)
            # A value ended: close the containers it ends, up to one that goes on.
            while open_:
                c = self.skip_space()
                self.pos += 1
                if open_[-1] == ord("{"):
                    if c == ord("}"):
                        open_.pop()
                        continue
                    if c != ord(","):
                        raise self._error(c, "after object key:value pair")
                    self._key()
                else:
                    if c == ord("]"):
                        open_.pop()
                        continue
                    if c != ord(","):
                        raise self._error(c, "after array element")
                break
            if not open_:
                return

    def _key(self) -> None:
        c = self.skip_space()
        self.pos += 1
        if c != ord('"'):
            raise self._error(c, "looking for beginning of object key string")
        self._string()
        c = self.skip_space()
        self.pos += 1
        if c != ord(":"):
            raise self._error(c, "after object key")

    def _scalar(self, c: int) -> None:
        if c == ord('"'):
            self._string()
        elif c == ord("-") or c in _DIGITS:
            self._number(c)
        elif c in _LITERALS:
            word = _LITERALS[c]
            for expected in word[1:]:
                got = self._next()
                if got != expected:
                    raise self._error(got, f"in literal {word.decode()} (expecting {_quote(expected)})")
        else:
            raise self._error(c, "looking for beginning of value")

    def _string(self) -> None:
        while True:
            c = self._next()
            if c == ord('"'):
                return
            if c < 0x20:
                raise self._error(c, "in string literal")
            if c != ord("\\"):
                continue
            c = self._next()
            if c == ord("u"):
                for _ in range(4):
                    h = self._next()
                    if h not in _HEX:
                        raise self._error(h, "in \\u hexadecimal character escape")
            elif c not in _ESCAPES:
                raise self._error(c, "in string escape code")

    def _digits(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _DIGITS:
            self.pos += 1

    def _number(self, first: int) -> None:
        start, exponent = self.pos - 1, False
        if first == ord("-"):
            first = self._next()
            if first not in _DIGITS:
                raise self._error(first, "in numeric literal")
        if first != ord("0"):
            self._digits()
        # A number may end the input: the decoder takes it as complete.
        if self.pos < len(self.data) and self.data[self.pos] == ord("."):
            self.pos += 1
            c = self._next()
            if c not in _DIGITS:
                raise self._error(c, "after decimal point in numeric literal")
            self._digits()
        if self.pos < len(self.data) and self.data[self.pos] in b"eE":
            self.pos += 1
            exponent = True
            c = self._next()
            if c in b"+-":
                c = self._next()
            if c not in _DIGITS:
                raise self._error(c, "in exponent of numeric literal")
            self._digits()
        # Only an exponent or a long literal can overflow; float() reads any length, as inf if need be.
        if (exponent or self.pos - start >= _LONG_LITERAL) and self.out_of_range is None:
            literal = self.data[start:self.pos]
            if math.isinf(float(literal)):
                self.out_of_range = literal


def decode(raw: bytes) -> Any:
    """The first JSON value of `raw`, as json.NewDecoder(body).Decode and dockerd's checks around it."""
    s = _Scanner(raw)
    try:
        s.skip_space()
    except _EOF:
        raise InvalidArgument("invalid JSON: got EOF while reading request body") from None
    try:
        s.value()
    except _EOF:
        raise InvalidArgument("invalid JSON: unexpected EOF") from None
    except _Syntax as e:
        raise InvalidArgument(f"invalid JSON: {e}") from None
    # Decoder.More: anything but the end of input or a closing bracket is more content.
    rest = raw[s.pos:].lstrip(_SPACE)
    if rest and rest[0] not in b"]}":
        raise InvalidArgument("unexpected content after JSON")
    if s.out_of_range is not None:
        shown = s.out_of_range.decode()
        if len(shown) > 32:
            shown = f"{shown[:24]}...({len(shown)} characters)"
        raise InvalidArgument(f"json: cannot unmarshal number {shown}: value out of range")
    # Go decodes invalid UTF-8 as U+FFFD rather than failing.
    value = json.loads(raw[:s.pos].decode("utf-8", errors="replace"))
    # json.loads has combined the paired escapes: any surrogate left is unpaired.
    if _SURROGATE_ESCAPE.search(raw, 0, s.pos):
        return _without_surrogates(value)
    return value


def _without_surrogates(value: Any) -> Any:
    """Recursive, as json.loads is: MAX_DEPTH bounds both."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_SURROGATE.sub("\ufffd", k): _without_surrogates(v) for k, v in value.items()}
    return value
