"""Variable substitution in Dockerfile words, with the rules of BuildKit's shell lexer.

A word is read left to right; outside quotes the escape token (`\\`, or `` ` `` after `# escape=`` ` ``)
makes the next character literal (a trailing one is dropped). Single quotes keep everything up to
the next `'` literally. Double quotes keep everything literally except `$` substitutions and the escape
token before `"`, `$` or itself; any other escaped character keeps its escape token. Substitutions:

    $NAME  ${NAME}             the value, or "" when unset
    ${NAME:-word} ${NAME-word} word when NAME is unset or empty / only when unset
    ${NAME:+word} ${NAME+word} word when NAME is set and not empty / when set, else ""
    ${NAME:?msg}  ${NAME?msg}  an error "NAME: msg" when unset or empty / only when unset
    ${NAME#pat}   ${NAME##pat} the value without its shortest / longest prefix matching pat
    ${NAME%pat}   ${NAME%%pat} the value without its shortest / longest suffix matching pat
    ${NAME/pat/r} ${NAME//pat/r} the first / every match of pat replaced by r (patterns.py)

`word` is itself expanded (a pattern keeps its escapes for patterns.py). A name is letters, digits
and `_`; a run of digits or one of `@*#?-$!0` is a special parameter (never set here, so ""). A lone
`$` stays a `$`. Anything else after `${NAME` is "unsupported modifier"; `${}`, `${:` and a missing
`}` are "bad substitution"/"missing '}'".

Errors say which word: `failed to process "WORD": ...`, as BuildKit's.

`expand` gives one string (ENV, LABEL, USER, WORKDIR... values); `expand_words` splits the result into
words where unquoted whitespace was, and splits the values of unquoted substitutions too, as a shell
does (`$PORTS` with "80 443" gives two words; `"$PORTS"` one). Quoted empty strings give no word.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.builder.dockerfile.errors import SubstitutionError
from engine.builder.dockerfile.patterns import replace, trim_prefix, trim_suffix

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


@dataclass
class _Words:
    """Collects words: raw characters (quoted, escaped) never split; expanded ones split on spaces."""

    words: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word:
                if "".join(self.current):
                    self.words.append("".join(self.current))
                self.current.clear()
                self.in_word = False
            return
        self.current.append(ch)
        self.in_word = True

    def add_raw(self, text: str) -> None:
        self.current.append(text)
        self.in_word = True

    def add_expanded(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def done(self) -> list[str]:
        if self.current and "".join(self.current):
            self.words.append("".join(self.current))
        return self.words


class _Lexer:
    def __init__(self, source: str, env: Mapping[str, str], escape: str,
                 raw_quotes: bool, skip_unset: bool, raw_escapes: bool | None = None,
                 quotes: bool = True) -> None:
        self.src = source
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_quotes if raw_escapes is None else raw_escapes
        self.quotes = quotes
        self.skip_unset = skip_unset

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def operand(self, stop: str, raw_escapes: bool, missing: str = "syntax error: missing '}'") -> str:
        """The word of a `${NAME<op>word}` up to `stop`; pattern words keep their escapes."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self.run(stop)[0]
        except SubstitutionError:
            if not self.peek():
                raise SubstitutionError(missing) from None
            raise
        finally:
            self.raw_escapes = saved

    def run(self, stop: str = "") -> tuple[str, list[str]]:
        """Reads up to `stop` (consumed) or the end; the text and its words."""
        out: list[str] = []
        words = _Words()
        while self.pos < len(self.src):
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out), words.done()
            if ch == "'" and self.quotes:
                text = self.single_quote()
                words.add_raw(text)
            elif ch == '"' and self.quotes:
                text = self.double_quote()
                words.add_raw(text)
            elif ch == "$":
                text = self.dollar()
                words.add_expanded(text)
            else:
                self.next()
                if ch == self.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        out.append(ch)
                    ch = self.next()
                    if not ch:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                text = ch
            out.append(text)
        if stop:
            raise SubstitutionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.done()

    def single_quote(self) -> str:
        self.next()
        end = self.src.find("'", self.pos)
        if end < 0:
            raise SubstitutionError("unexpected end of statement while looking for matching single-quote")
        text = self.src[self.pos:end]
        self.pos = end + 1
        return f"'{text}'" if self.raw_quotes else text

    def double_quote(self) -> str:
        self.next()
        out = ['"'] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if not ch:
                raise SubstitutionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                if self.raw_quotes:
                    out.append('"')
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape:
                follower = self.peek()
                if not follower:
                    continue
                if follower in ('"', "$", self.escape):
                    if self.raw_escapes:
                        out.append(ch)
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch.isdigit():
            while self.peek().isdigit():
                self.next()
            return self.src[start:self.pos]
        if ch and ch in _SPECIAL_PARAMS:
            return self.next()
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.src[start:self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            if name not in self.env and self.skip_unset:
                return "$" + name
            return self.env.get(name, "")
        self.next()
        ch = self.peek()
        if not ch:
            raise SubstitutionError("syntax error: missing '}'")
        if ch in "{}:":
            raise SubstitutionError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if not op:
            raise SubstitutionError("syntax error: missing '}'")
        if op == "}":
            if name not in self.env and self.skip_unset:
                return "${" + name + "}"
            return self.env.get(name, "")
        if op == "/":
            return self.replacement(name)
        colon = op == ":"
        if colon:
            op = self.next()
        if not op or op not in "-+?#%":
            raise SubstitutionError(f"unsupported modifier ({':' if colon else ''}{op}) in substitution")
        word = self.operand("}", raw_escapes=op in "#%")
        found = name in self.env
        value = self.env.get(name, "")
        if not found and self.skip_unset:
            return "${" + name + (":" if colon else "") + op + word + "}"
        present = bool(value) if colon else found
        if op in "#%":
            longest = word.startswith(op)
            pattern = word[1:] if longest else word
            return (trim_prefix if op == "#" else trim_suffix)(value, pattern, longest)
        if op == "-":
            return value if present else word
        if op == "+":
            return word if present else ""
        if present:
            return value
        if not found:
            raise SubstitutionError(f"{name}: {word or 'is not allowed to be unset'}")
        raise SubstitutionError(f"{name}: {word or 'is not allowed to be empty'}")


    def replacement(self, name: str) -> str:
        every = self.peek() == "/"
        if every:
            self.next()
        pattern = self.operand("/", raw_escapes=True, missing="syntax error: missing '/' in ${}")
        replacement = self.operand("}", raw_escapes=True)
        if name not in self.env and self.skip_unset:
            return "${" + name + "/" + ("/" if every else "") + pattern + "/" + replacement + "}"
        return replace(self.env.get(name, ""), pattern, replacement, every)


def _process(source: str, lexer: _Lexer) -> tuple[str, list[str]]:
    try:
        return lexer.run()
    except SubstitutionError as err:
        raise SubstitutionError(f"failed to process {json.dumps(source, ensure_ascii=False)}: {err.message}") from None
    except RecursionError:
        # Each `${a:-${b:-...}}` level is a call: a hostile Dockerfile could nest past Python's stack.
        shown = json.dumps(source[:80] + ("..." if len(source) > 80 else ""), ensure_ascii=False)
        raise SubstitutionError(f"failed to process {shown}: substitutions nested too deeply") from None


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """The word with its quotes removed and its variables substituted (one string, never split)."""
    if not any(c in word for c in ("$", "'", '"', escape)):
        return word
    return _process(word, _Lexer(word, env, escape, raw_quotes=False, skip_unset=False))[0]


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """The text split into words the way a shell splits it, each expanded."""
    return _process(text, _Lexer(text, env, escape, raw_quotes=False, skip_unset=False))[1]


def expand_heredoc(content: str, env: Mapping[str, str]) -> str:
    """A COPY/ADD heredoc body whose delimiter was not quoted, as BuildKit expands it: variables
    substituted everywhere, quotes ordinary characters, `\\` escaping the next character (`\\$X`
    gives `$X`) whatever the file's escape token."""
    lexer = _Lexer(content, env, "\\", raw_quotes=False, skip_unset=False, quotes=False)
    return _process(content, lexer)[0]


def split_raw_words(text: str, escape: str = "\\") -> list[str]:
    """Words with their quotes and escapes kept, nothing substituted: how heredoc markers are found."""
    return _Lexer(text, {}, escape, raw_quotes=True, skip_unset=True).run()[1]


def unquote_unexpanded(word: str, escape: str = "\\") -> str:
    """Quotes removed, every `$` reference left as written: a heredoc's delimiter name."""
    return _Lexer(word, {}, escape, raw_quotes=False, skip_unset=True).run()[0]
