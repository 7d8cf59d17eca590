"""Go's text/template language, parsed: the lexer and parser behind every `--format`.

Scripts written for the docker CLI are Go templates, so the grammar is Go's: text and `{{actions}}` with
`{{-`/`-}}` trim markers and `{{/* comments */}}`; pipelines of commands joined by `|`; fields (`.A.B`),
variables (`$`, `$x`, `$x.A`), `(pipelines)` with fields after them, literals (strings, raw strings,
characters, numbers, true/false/nil) and function calls; `:=`/`=` declarations; if/else if/else, range
(with `$i, $v :=`, else, break, continue) and with; define, template and block. Evaluation is
`gotemplate_exec`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union


class TemplateError(Exception):
    """A template that does not parse, or an execution failure; worded as Go words it."""


# ---- nodes --------------------------------------------------------------------------------------------------

@dataclass
class Text:
    text: str


@dataclass
class Field:
    names: list[str]
    pos: int

    def __str__(self) -> str:
        return "." + ".".join(self.names)


@dataclass
class Variable:
    names: list[str]  # the variable's name first ("$" or "$x"), then fields
    pos: int

    def __str__(self) -> str:
        return ".".join(self.names)


@dataclass
class Dot:
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass
class Identifier:
    name: str
    pos: int

    def __str__(self) -> str:
        return self.name


@dataclass
class Literal:
    value: Any
    source: str
    pos: int

    def __str__(self) -> str:
        return self.source


@dataclass
class Chain:
    node: Any
    names: list[str]
    pos: int

    def __str__(self) -> str:
        return f"{self.node}." + ".".join(self.names)


@dataclass
class Command:
    args: list[Any]
    pos: int

    def __str__(self) -> str:
        return " ".join(str(a) for a in self.args)


@dataclass
class Pipe:
    decl: list[str]
    is_assign: bool
    cmds: list[Command]
    pos: int

    def __str__(self) -> str:
        head = f"{', '.join(self.decl)} {'=' if self.is_assign else ':='} " if self.decl else ""
        return head + " | ".join(str(c) for c in self.cmds)


@dataclass
class SubPipe:
    pipe: Pipe
    pos: int

    def __str__(self) -> str:
        return f"({self.pipe})"


@dataclass
class Action:
    pipe: Pipe
    pos: int


@dataclass
class Branch:
    kind: str  # if, range, with
    pipe: Pipe
    body: list[Any]
    otherwise: list[Any] | None
    pos: int


@dataclass
class Loop:
    kind: str  # break, continue
    pos: int


@dataclass
class Include:
    name: str
    pipe: Pipe | None
    pos: int


Node = Union[Text, Action, Branch, Loop, Include]


@dataclass
class Parsed:
    root: list[Any]
    source: str
    defined: dict[str, list[Any]] = field(default_factory=dict)

    def location(self, pos: int) -> str:
        """Go's ErrorContext: ":line:column" of a node."""
        before = self.source[:pos]
        return f":{before.count(chr(10)) + 1}:{pos - before.rfind(chr(10)) - 1}"


# ---- lexer --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<declare>:=)
  | (?P<raw>`[^`]*`)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<char>'(?:[^'\\\n]|\\.[^']*)')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?)i?)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<variable>\$[A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<punct>[()|,=])
""", re.VERBOSE)

_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil",
             "true", "false"}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'",
            '"': '"'}


def _unquote(text: str) -> str:
    """A Go interpreted string literal's value."""
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[e]
            out.append(chr(int(body[i + 2:i + 2 + size], 16)))
            i += 2 + size
        elif e.isdigit():
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            raise TemplateError(f"invalid syntax: {text}")
    return "".join(out)


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[0-7]+", clean):
            return int(clean, 8)
        return int(clean, 0)
    except ValueError:
        return float(clean)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _lex_action(source: str, start: int, end: int) -> list[_Tok]:
    tokens, i = [], start
    while i < end:
        m = _TOKEN.match(source, i, end)
        if m is None:
            line = source[:i].count("\n") + 1
            raise TemplateError(f'template: :{line}: unexpected "{source[i]}" in command')
        kind = m.lastgroup or ""
        if kind != "space":
            tokens.append(_Tok(kind, m.group(), i))
        i = m.end()
    return tokens


def _split(source: str) -> list[tuple[str, str, int, int]]:
    """The template as ("text", text, pos, 0) and ("action", source, start, end) pieces, trim markers applied."""
    pieces: list[tuple[str, str, int, int]] = []
    i = 0
    while True:
        left = source.find("{{", i)
        if left < 0:
            pieces.append(("text", source[i:], i, 0))
            return pieces
        text = source[i:left]
        inner = left + 2
        if source.startswith("-", inner) and source[inner + 1:inner + 2] in (" ", "\t", "\r", "\n"):
            text = text.rstrip(" \t\r\n")
            inner += 1
        pieces.append(("text", text, i, 0))
        line = source[:left].count("\n") + 1
        trimmed = inner > left + 2
        if source.startswith("/*", _skip_space(source, inner) if trimmed else inner):
            close = source.find("*/", inner)
            if close < 0:
                raise TemplateError(f"template: :{line}: unclosed comment")
            right = _right_delim(source, close + 2)
            if right is None:
                raise TemplateError(f"template: :{line}: comment ends before closing delimiter")
            inner = right[0]
        else:
            right = _find_right(source, inner, line)
            pieces.append(("action", source, inner, right[0]))
        end_of_action, trim_after = right[1], right[2]
        i = end_of_action
        if trim_after:
            while i < len(source) and source[i] in " \t\r\n":
                i += 1


def _skip_space(source: str, i: int) -> int:
    while i < len(source) and source[i] in " \t\r\n":
        i += 1
    return i


def _right_delim(source: str, i: int) -> tuple[int, int, bool] | None:
    """(end of the action's inside, index after "}}", trim) for a "}}" or " -}}" right at i (after spaces)."""
    j = _skip_space(source, i)
    if source.startswith("}}", j):
        return i, j + 2, False
    if j > i and source.startswith("-}}", j):
        return i, j + 3, True
    return None


def _find_right(source: str, i: int, line: int) -> tuple[int, int, bool]:
    """The right delimiter of an action, skipping over quoted strings and characters."""
    while i < len(source):
        c = source[i]
        if c in "\"'`":
            close = re.compile(r"`[^`]*`" if c == "`" else rf"{c}(?:[^{c}\\\n]|\\.)*{c}").match(source, i)
            if close is None:
                raise TemplateError(f"template: :{line}: unterminated {'raw quoted string' if c == '`' else 'quoted string'}")
            i = close.end()
            continue
        if c in " \t\r\n" and (found := _right_delim(source, i)) and found[2]:
            return found
        if source.startswith("}}", i):
            return i, i + 2, False
        i += 1
    raise TemplateError(f"template: :{line}: unclosed action")


# ---- parser -------------------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pieces = _split(source)
        self.i = 0
        self.defined: dict[str, list[Any]] = {}
        self.loops = 0

    def fail(self, pos: int, message: str) -> TemplateError:
        return TemplateError(f"template: :{self.source[:pos].count(chr(10)) + 1}: {message}")

    def parse(self) -> Parsed:
        root, stop = self.list_until(())
        if stop is not None:
            raise self.fail(stop[1], f"unexpected {{{{{stop[0]}}}}}")
        return Parsed(root, self.source, self.defined)

    def list_until(self, enders: tuple[str, ...]) -> tuple[list[Any], tuple[str, int, list[_Tok]] | None]:
        nodes: list[Any] = []
        while self.i < len(self.pieces):
            kind, text, start, end = self.pieces[self.i]
            self.i += 1
            if kind == "text":
                if text:
                    nodes.append(Text(text))
                continue
            toks = _lex_action(text, start, end)
            if not toks:
                raise self.fail(start, "missing value for command")
            head = toks[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                if head.text not in enders:
                    raise self.fail(head.pos, f"unexpected {{{{{head.text}}}}}")
                return nodes, (head.text, head.pos, toks[1:])
            nodes.append(self.action(toks))
        if enders:
            raise self.fail(len(self.source), "unexpected EOF")
        return nodes, None

    def action(self, toks: list[_Tok]) -> Any:
        head = toks[0]
        if head.kind == "ident" and head.text in ("if", "range", "with"):
            return self.branch(head.text, toks[1:], head.pos)
        if head.kind == "ident" and head.text in ("break", "continue"):
            if len(toks) > 1:
                raise self.fail(toks[1].pos, f"unexpected {toks[1].text} in {{{{{head.text}}}}}")
            if not self.loops:
                raise self.fail(head.pos, f"{{{{{head.text}}}}} outside {{{{range}}}}")
            return Loop(head.text, head.pos)
        if head.kind == "ident" and head.text in ("define", "block"):
            name = self.name_of(toks, head)
            body, stop = self.list_until(("end",))
            if stop is not None and stop[2]:
                raise self.fail(stop[1], "unexpected tokens after end")
            self.defined[name] = body
            if head.text == "define":
                return Text("")
            return Include(name, self.pipeline(toks[2:], head.pos, "block"), head.pos)
        if head.kind == "ident" and head.text == "template":
            name = self.name_of(toks, head)
            return Include(name, self.pipeline(toks[2:], head.pos, "template") if len(toks) > 2 else None, head.pos)
        return Action(self.pipeline(toks, head.pos, "command"), head.pos)

    def name_of(self, toks: list[_Tok], head: _Tok) -> str:
        if len(toks) < 2 or toks[1].kind not in ("string", "raw"):
            raise self.fail(head.pos, f"unexpected {toks[1].text if len(toks) > 1 else 'end'} in {head.text} clause")
        return _unquote(toks[1].text) if toks[1].kind == "string" else toks[1].text[1:-1]

    def branch(self, kind: str, toks: list[_Tok], pos: int) -> Branch:
        pipe = self.pipeline(toks, pos, kind, ranging=kind == "range")
        if kind == "range":
            self.loops += 1
        body, stop = self.list_until(("end", "else"))
        if kind == "range":
            self.loops -= 1
        otherwise = None
        assert stop is not None
        if stop[0] == "else":
            rest = stop[2]
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and kind != "range":
                # else if / else with: a nested branch that shares this one's end.
                otherwise = [self.branch(rest[0].text, rest[1:], rest[0].pos)]
                return Branch(kind, pipe, body, otherwise, pos)
            if rest:
                raise self.fail(rest[0].pos, f"unexpected {rest[0].text} in else")
            otherwise, stop = self.list_until(("end",))
            assert stop is not None
        if stop[2]:
            raise self.fail(stop[2][0].pos, f"unexpected {stop[2][0].text} in end")
        return Branch(kind, pipe, body, otherwise, pos)

    def pipeline(self, toks: list[_Tok], pos: int, context: str, ranging: bool = False) -> Pipe:
        decl: list[str] = []
        is_assign = False
        # `$x :=`, `$x =`, and in range `$i, $v :=`
        j = 0
        names = []
        while j < len(toks) and toks[j].kind == "variable":
            names.append(toks[j].text)
            if j + 1 < len(toks) and toks[j + 1].text == "," and ranging and len(names) < 2:
                j += 2
                continue
            if j + 1 < len(toks) and toks[j + 1].text in (":=", "="):
                decl, is_assign = names, toks[j + 1].text == "="
                toks = toks[j + 2:]
            break
        if not toks:
            raise self.fail(pos, f"missing value for {context}")
        cmds: list[Command] = []
        current: list[Any] = []
        k = 0
        while k < len(toks):
            t = toks[k]
            if t.text == "|" and t.kind == "punct":
                if not current:
                    raise self.fail(t.pos, "missing value for command")
                cmds.append(Command(current, current[0].pos))
                current = []
                k += 1
                continue
            node, k = self.operand(toks, k)
            current.append(node)
        if not current:
            raise self.fail(pos, "missing value for command")
        cmds.append(Command(current, current[0].pos))
        for stage, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], (Literal, Dot)):
                raise self.fail(cmd.pos, f"non executable command in pipeline stage {stage}")
        return Pipe(decl, is_assign, cmds, pos)

    def operand(self, toks: list[_Tok], k: int) -> tuple[Any, int]:
        t = toks[k]
        node: Any
        if t.kind == "punct" and t.text == "(":
            depth, end = 0, k
            for end in range(k, len(toks)):
                if toks[end].text == "(" and toks[end].kind == "punct":
                    depth += 1
                elif toks[end].text == ")" and toks[end].kind == "punct":
                    depth -= 1
                    if depth == 0:
                        break
            if depth:
                raise self.fail(t.pos, "unclosed left paren")
            node = SubPipe(self.pipeline(toks[k + 1:end], t.pos, "parenthesized pipeline"), t.pos)
            k = end + 1
        elif t.kind == "field":
            names = t.text[1:].split(".")
            # As Go's parser: a chain of fields is placed at its second field.
            return Field(names, t.pos + 1 + len(names[0]) if len(names) > 1 else t.pos), k + 1
        elif t.kind == "variable":
            node, k = Variable([t.text], t.pos), k + 1
        elif t.kind == "dot":
            node, k = Dot(t.pos), k + 1
        elif t.kind == "string":
            node, k = Literal(_unquote(t.text), t.text, t.pos), k + 1
        elif t.kind == "raw":
            node, k = Literal(t.text[1:-1], t.text, t.pos), k + 1
        elif t.kind == "char":
            node, k = Literal(ord(_unquote('"' + t.text[1:-1].replace('"', '\\"') + '"')), t.text, t.pos), k + 1
        elif t.kind == "number":
            node, k = Literal(_number(t.text), t.text, t.pos), k + 1
        elif t.kind == "ident" and t.text in ("true", "false"):
            node, k = Literal(t.text == "true", t.text, t.pos), k + 1
        elif t.kind == "ident" and t.text == "nil":
            node, k = Literal(None, "nil", t.pos), k + 1
        elif t.kind == "ident" and t.text not in _KEYWORDS:
            node, k = Identifier(t.text, t.pos), k + 1
        else:
            raise self.fail(t.pos, f'unexpected "{t.text}" in operand')
        # Fields right after an operand: ($x).A, (pipe).A.B, $x.A
        if k < len(toks) and toks[k].kind == "field" and toks[k].pos == toks[k - 1].pos + len(toks[k - 1].text):
            names = toks[k].text[1:].split(".")
            if isinstance(node, Variable):
                node.names += names
                node.pos = toks[k].pos
            else:
                node = Chain(node, names, toks[k].pos)
            k += 1
        return node, k


def parse(source: str) -> Parsed:
    return _Parser(source).parse()
