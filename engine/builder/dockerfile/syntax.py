"""How BuildKit's Dockerfile parser cuts an instruction's text: flags, words, JSON arrays, key=value pairs.

These are the parser's rules, applied before any substitution (quotes stay in the words; the lexer
removes them later, when the executor expands a word with its environment).
"""
from __future__ import annotations

import json
import re

from engine.builder.dockerfile.errors import DockerfileError

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


def extract_flags(text: str) -> tuple[list[str], str]:
    """The leading `--flag[=value]` words (quotes and backslashes resolved) and the rest of the line.

    Flags end at the first word that does not start with `--`, or at a bare `--`.
    """
    flags: list[str] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return flags, ""
        if not text.startswith("--", pos):
            return flags, text[pos:]
        word: list[str] = []
        blank_ok = False
        quote = ""
        while pos < n:
            ch = text[pos]
            if not quote and ch.isspace():
                break
            if not quote and ch in "'\"":
                quote, blank_ok = ch, True
            elif quote and ch == quote:
                quote = ""
            elif ch == "\\":
                pos += 1
                if pos < n:
                    word.append(text[pos])
            else:
                word.append(ch)
            pos += 1
        joined = "".join(word)
        if joined == "--":
            return flags, text[pos:] if pos < n else ""
        if joined or blank_ok:
            flags.append(joined)


def parse_words(text: str, escape: str) -> list[str]:
    """Whitespace-separated words; quoted spaces and escaped characters do not split (both kept)."""
    words: list[str] = []
    word: list[str] = []
    in_word = blank_ok = False
    quote = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if not quote and ch.isspace():
            if in_word and (word or blank_ok):
                words.append("".join(word))
            word, in_word, blank_ok = [], False, False
            i += 1
            continue
        in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 >= n:
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = text[i]
        elif ch in "'\"":
            quote, blank_ok = ch, True
        elif ch == escape:
            if i + 1 >= n:
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = text[i]
        word.append(ch)
        i += 1
    if in_word and (word or blank_ok):
        words.append("".join(word))
    return words


def split_whitespace(text: str) -> list[str]:
    return [w for w in _WHITESPACE.split(text) if w] if text else []


class NotStringArray(DockerfileError):
    def __init__(self, line: int | None = None) -> None:
        super().__init__("when using JSON array syntax, arrays must be comprised of strings only", line)


def parse_json_array(text: str) -> list[str] | None:
    """The JSON exec form: the first JSON value of the text when it is an array of strings.

    As Docker's decoder: text after the array is ignored; invalid JSON (or not an array) is no JSON
    form (None, the shell form), but a valid array holding anything other than strings is an error.
    """
    text = text.lstrip()
    if not text.startswith("["):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    except RecursionError:
        raise NotStringArray() from None  # arrays nested past the decoder's depth hold no strings
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise NotStringArray()
    return value


def parse_name_values(text: str, keyword: str, escape: str) -> list[tuple[str, str]]:
    """ENV and LABEL pairs, raw: `K=V K2=V2` (each word must have `=`), or the legacy `K the rest`."""
    words = parse_words(text, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(text, maxsplit=1)
        if len(parts) < 2 or not parts[1]:
            raise DockerfileError(f"{keyword} must have two arguments")
        return [(parts[0], parts[1])]
    pairs = []
    for word in words:
        if "=" not in word:
            raise DockerfileError(
                f"Syntax error - can't find = in {json.dumps(word)}. Must be of the form: name=value")
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs
