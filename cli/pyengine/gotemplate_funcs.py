"""The values Go templates see and the functions they call: Go's printing (%v), truth and comparisons,
text/template's builtins and the docker CLI's json, split, join, title, lower, upper, pad, truncate.

Values are what the daemon's JSON decodes to (dicts are Go maps, lists slices, None nil) plus `Record`s,
which stand for the docker CLI's formatter contexts (a Go struct with methods such as ps's `.Label "k"`).
"""
from __future__ import annotations

import html
import json
import math
import re
from typing import Any, Callable
from urllib.parse import quote_plus


class _NoValue:
    """Go's invalid reflect.Value: a missing map key. Prints as <no value>."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


class StringMap(dict[str, str]):
    """A Go map[string]string (labels, options): a missing key's value is ""."""


class GoFields(dict[str, Any]):
    """A Go struct decoded from JSON whose Go field names differ from some of its JSON keys (`APIVersion` is
    sent as `ApiVersion`): a template reaches such a field by its Go name too, as its `zeros` value when the
    daemon left it out (omitempty); printing and `json` see the keys."""

    def __init__(self, raw: dict[str, Any], go_names: dict[str, str], zeros: dict[str, Any] | None = None) -> None:
        super().__init__(raw)
        self.go_names = go_names
        self.zeros = zeros or {}

    def go_field(self, name: str) -> Any:
        """The field a Go name not among the keys stands for (NO_VALUE: none)."""
        key = self.go_names.get(name)
        if key is None:
            return NO_VALUE
        return self[key] if key in self else self.zeros.get(name, NO_VALUE)


class Record:
    """A docker CLI formatter context: named fields (values, or callables computed on use) and methods
    with arguments. `used` remembers the fields a template touched (ps asks for sizes only if .Size is)."""

    def __init__(self, type_name: str, fields: dict[str, Any], methods: dict[str, Callable[..., Any]] | None = None,
                 ) -> None:
        self.type_name = type_name
        self.fields = fields
        self.methods = methods or {}
        self.used: set[str] = set()

    def get(self, name: str, args: list[Any]) -> Any:
        self.used.add(name)
        if name in self.methods:
            return self.methods[name](*args)
        if name not in self.fields:
            raise Failure(f"can't evaluate field {name} in type {self.type_name}")
        if args:
            raise Failure(f"{name} has arguments but cannot be invoked as function")
        value = self.fields[name]
        return value() if callable(value) else value

    def printed(self, nested: bool) -> str:
        """Go's %v of the struct; `nested` when it is inside another value."""
        return "{" + " ".join(text(self.get(n, []), nested=True) for n in sorted(self.fields)) + "}"

    def truthy(self) -> bool:
        return True

    def as_json(self) -> str:
        values = {name: self.get(name, []) for name in sorted(self.fields)}
        # Through Go's json.Marshal (a MarshalJSON method): HTML characters escaped.
        return _escape_html(json.dumps(values, ensure_ascii=False, separators=(",", ":")))


class Failure(Exception):
    """An execution error, placed at its node by the executor."""


def _escape_html(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, Record):
        return value.type_name
    return "<nil>"


def go_float(f: float) -> str:
    """%v of a float64 (strconv's shortest 'g', exponent from 1e+06 and below 1e-04)."""
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if math.isnan(f):
        return "NaN"
    if f == 0:
        return "0"
    exp = math.floor(math.log10(abs(f)))
    mantissa = repr(f)
    if -4 <= exp < 21 and "e" not in mantissa and exp < 6:
        return mantissa.removesuffix(".0")
    digits = f"{f:.17e}"
    # Shortest digits that read back as f.
    for precision in range(17):
        candidate = f"{f:.{precision}e}"
        if float(candidate) == f:
            digits = candidate
            break
    base, _, power = digits.partition("e")
    sign, power = power[0], power[1:].lstrip("0")
    return f"{base}e{sign}{power.rjust(2, '0')}"


def text(value: Any, nested: bool = False) -> str:
    """Go's fmt %v of a value (`nested` inside another one)."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list):
        return "[" + " ".join(text(v, nested=True) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{text(k)}:{text(v, nested=True)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, Record):
        return value.printed(nested)
    return str(value)


def truth(value: Any) -> bool:
    if value is NO_VALUE or value is None:
        return False
    if isinstance(value, Record):
        return value.truthy()
    return bool(value)


def to_json(value: Any) -> str:
    """docker's `json` function: compact, HTML left alone (but a record's own marshalling escapes it)."""
    if isinstance(value, Record):
        return value.as_json()
    if isinstance(value, StringMap):
        value = dict(sorted(value.items()))  # a Go map: marshalled with its keys sorted
    encoded = json.dumps(None if value is NO_VALUE else value, ensure_ascii=False, separators=(",", ":"),
                         default=lambda r: json.loads(r.as_json()))
    return encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# ---- functions ----------------------------------------------------------------------------------------------

def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise Failure(f"wrong type for value; expected string; got {go_type(value)}")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Failure(f"wrong type for value; expected int; got {go_type(value)}")
    return value


def _index(item: Any, *keys: Any, json_maps: bool = False) -> Any:
    """Go's index; `json_maps` when the maps are decoded JSON (interface values: a missing key is invalid)."""
    for key in keys:
        if isinstance(item, dict):
            if key in item:
                item = item[key]
            else:
                # A typed map of strings (labels, options) gives "", others Go's invalid value.
                item = "" if isinstance(item, StringMap) or not json_maps and item and all(
                    isinstance(v, str) for v in item.values()) else NO_VALUE
        elif isinstance(item, (list, str)):
            i = _integer(key)
            if not 0 <= i < len(item):
                raise Failure(f"error calling index: index out of range: {i}")
            item = item[i] if isinstance(item, list) else ord(item[i])
        elif item is None or item is NO_VALUE:
            raise Failure("error calling index: index of untyped nil")
        else:
            raise Failure(f"error calling index: can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, (list, str)):
        raise Failure(f"error calling slice: can't slice item of type {go_type(item)}")
    ints = [_integer(b) for b in bounds]
    start = ints[0] if ints else 0
    end = ints[1] if len(ints) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise Failure(f"error calling slice: index out of range: {end}")
    return item[start:end]


def _length(item: Any) -> int:
    if isinstance(item, (list, dict, str)):
        return len(item)
    raise Failure(f"error calling len: len of type {go_type(item)}")


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b) or a is None or b is None


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise Failure("error calling eq: missing argument for comparison")
    for other in others:
        if not _comparable(first, other):
            raise Failure("error calling eq: incompatible types for comparison")
        if first == other:
            return True
    return False


def _order(name: str, test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if not _comparable(a, b) or isinstance(a, (bool, list, dict)) or a is None:
            raise Failure(f"error calling {name}: incompatible types for comparison")
        return test(a, b)

    return compare


def _sprint(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(text(a))
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def _sprintf(fmt: Any, *args: Any) -> str:
    """Go's Sprintf for the verbs templates use: v s q d t f e g x X o c b and %%."""
    fmt = _string(fmt)
    pending = list(args)
    out, i = [], 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[i:m.start()])
        i = m.end()
        flags, width, precision, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if not pending:
            out.append(f"%!{verb}(MISSING)")
            continue
        value = pending.pop(0)
        out.append(_format_one(flags, width, precision, verb, value))
    out.append(fmt[i:])
    if pending:
        out.append("%!(EXTRA " + ", ".join(f"{go_type(v)}={text(v)}" for v in pending) + ")")
    return "".join(out)


def _format_one(flags: str, width: str | None, precision: str | None, verb: str, value: Any) -> str:
    spec = flags.replace("#", "") + (width or "") + (f".{precision}" if precision is not None else "")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if verb == "v":
        # fmt writes a pointer to a struct it is given as &{...} (a template's own printing does not).
        body = ("&" if getattr(value, "pointer", False) else "") + text(value)
        return f"{body:{'<' if '-' in flags else '>'}{width or ''}}"
    if verb == "s" and isinstance(value, (str, list, dict, Record)) or verb == "s" and value is None:
        body = text(value)[:int(precision)] if precision is not None else text(value)
        return f"{body:{'<' if '-' in flags else '>'}{width or ''}}"
    if verb == "q" and isinstance(value, str):
        body = json.dumps(value, ensure_ascii=False)
        return f"{body:{'<' if '-' in flags else '>'}{width or ''}}"
    if verb == "t" and isinstance(value, bool):
        return f"{text(value):{'<' if '-' in flags else '>'}{width or ''}}"
    if verb in "dxXobc" and is_int:
        if verb == "c":
            return chr(value)
        return ("%" + spec + {"d": "d", "x": "x", "X": "X", "o": "o", "b": "d"}[verb]) % value \
            if verb != "b" else format(value, "b")
    if verb in "xX" and isinstance(value, str):
        return value.encode().hex() if verb == "x" else value.encode().hex().upper()
    if verb in "feEgG" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("%" + spec + verb) % value
    return f"%!{verb}({go_type(value)}={text(value)})"


def _title(s: Any) -> str:
    value = _string(s)
    return re.sub(r"(?<![\w'])([a-z])", lambda m: m.group(1).upper(), value)


def _pad(s: Any, prefix: Any, suffix: Any) -> str:
    value = _string(s)
    return value if value == "" else " " * _integer(prefix) + value + " " * _integer(suffix)


def _truncate(s: Any, length: Any) -> str:
    value, n = _string(s), _integer(length)
    return value if len(value) < n else value[:n]


def _join(items: Any, sep: Any) -> str:
    if not isinstance(items, list):
        raise Failure(f"wrong type for value; expected []string; got {go_type(items)}")
    return _string(sep).join(text(i) for i in items)


def _split(s: Any, sep: Any) -> list[str]:
    value, separator = _string(s), _string(sep)
    return list(value) if separator == "" else value.split(separator)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "index": _index, "slice": _slice, "len": _length, "not": lambda v: not truth(v),
    "eq": _eq, "ne": lambda a, b: not _eq(a, b),
    "lt": _order("lt", lambda a, b: a < b), "le": _order("le", lambda a, b: a <= b),
    "gt": _order("gt", lambda a, b: a > b), "ge": _order("ge", lambda a, b: a >= b),
    "print": _sprint, "println": lambda *a: " ".join(text(v) for v in a) + "\n", "printf": _sprintf,
    "html": lambda *a: html.escape(_sprint(*a)).replace("&#x27;", "&#39;"),
    "urlquery": lambda *a: quote_plus(_sprint(*a)),
    "js": lambda *a: json.dumps(_sprint(*a))[1:-1].replace("'", "\\'").replace("<", "\\u003C").replace(
        ">", "\\u003E"),
    "json": to_json, "split": _split, "join": _join, "title": _title,
    "lower": lambda s: _string(s).lower(), "upper": lambda s: _string(s).upper(),
    "pad": _pad, "truncate": _truncate,
}

# A table's header row is the same template over the column names: these keep a name as it is.
HEADER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **FUNCTIONS, "json": lambda v: _string(v), "split": lambda v, _: _string(v),
    "join": lambda v, _: _string(v), "title": lambda v: _string(v),
    "lower": lambda v: _string(v), "upper": lambda v: _string(v),
    "truncate": lambda v, _: _string(v),
}

FUNCTIONS["and"] = FUNCTIONS["or"] = lambda *a: a[-1]  # evaluated lazily by the executor
HEADER_FUNCTIONS["and"] = HEADER_FUNCTIONS["or"] = FUNCTIONS["and"]
# docker inspect's second run is over decoded JSON, whose maps have interface values.
JSON_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **FUNCTIONS, "index": lambda item, *keys: _index(item, *keys, json_maps=True)}


def go_time(rfc3339: str) -> str:
    """An API time as Go's time.String() prints it once decoded: "2006-01-02 15:04:05.5 +0000 UTC"."""
    m = re.fullmatch(r"(\S+)T([\d:]+)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if m is None:
        return rfc3339
    day, clock, fraction, zone = m.groups()
    fraction = (fraction or "").rstrip("0")
    offset = "+0000 UTC" if zone == "Z" else f"{zone.replace(':', '')} {zone.replace(':', '')}"
    return f"{day} {clock}{'.' + fraction if fraction else ''} {offset}"
