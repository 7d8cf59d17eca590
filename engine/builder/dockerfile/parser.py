"""The Dockerfile parser: text → raw instructions (keyword, flags, argument text, heredocs, lines).

Written here rather than bound: the `dockerfile` package on PyPI (3.4.0, which embeds moby/buildkit
v0.12.5's Go parser) was evaluated (docs/builder.md): it parses heredocs, flags, directives and
continuations as BuildKit does, but its errors carry no line number (dockerd's builder must say
"dockerfile parse error line N"), it drops the escape token, the heredocs' chomp/expand marks and the
parser's warnings, and it loads a Go runtime into the daemon. Its rules, which this module follows:

- Parser directives (`# escape=`, `# syntax=`, `# check=`, any `# name=value`) are read only at the top:
  the first line that is not one (an empty line, a comment, an instruction) ends them. Only `escape`
  means something to the parser: `\\` (default) or `` ` ``; given twice it is an error.
- Lines are read with a leading UTF-8 BOM removed and `\\r\\n` taken as `\\n` (heredoc bodies keep
  the `\\r`). Comment lines (`#` after optional whitespace) are dropped, also between continuation
  lines; empty lines inside a continuation are skipped with a warning. A line continues when its
  last non-blank character is the escape token (not preceded by another); the next line is appended
  to it without the token.
- The first word is the keyword (any case); then come `--flags`; the rest is the argument text.
- RUN, COPY and ADD in shell form may open heredocs (`<<EOF`, `<<-EOF` strips leading tabs,
  `<<"EOF"`/`<<'EOF'` does not expand, `3<<EOF` names a file descriptor); their bodies follow the
  instruction, in order, each up to its delimiter line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.builder.dockerfile.errors import DockerfileError, SubstitutionError
from engine.builder.dockerfile.lexer import split_raw_words, unquote_unexpanded
from engine.builder.dockerfile.syntax import extract_flags, parse_json_array

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})


@dataclass(frozen=True)
class Heredoc:
    """One here-document: `content` as written (with its newlines); `body` with `<<-`'s tabs removed."""

    name: str
    content: str
    fd: int = 0
    chomp: bool = False
    expand: bool = True

    @property
    def body(self) -> str:
        return _LEADING_TABS.sub("", self.content) if self.chomp else self.content


@dataclass(frozen=True)
class RawInstruction:
    keyword: str
    args: str
    original: str
    start_line: int
    end_line: int
    flags: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()
    json: list[str] | None = None


@dataclass
class ParsedFile:
    instructions: list[RawInstruction]
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


class _Directives:
    def __init__(self) -> None:
        self.escape = "\\"
        self.found: dict[str, str] = {}
        self.done = False

    def offer(self, line: str, number: int) -> None:
        if self.done:
            return
        match = _DIRECTIVE.match(line.strip())
        if not match:
            self.done = True
            return
        key, value = match.group(1).lower(), match.group(2)
        if key in self.found:
            raise DockerfileError(f"only one {key} parser directive can be used", number)
        self.found[key] = value
        if key == "escape":
            if value not in ("`", "\\"):
                raise DockerfileError(f"invalid escape token '{value}' does not match ` or \\", number)
            self.escape = value


def parse_heredoc_marker(word: str) -> Heredoc | None:
    """The heredoc a shell word opens (`<<EOF`, `2<<-"END"`), or None when it opens none."""
    match = _HEREDOC.match(word)
    if not match or not match.group(3):
        return None
    rest = match.group(3)
    if len(split_raw_words(rest)) != 1:
        return None
    name = unquote_unexpanded(rest)
    quoted = sum(map(rest.count, "'\"")) != sum(map(name.count, "'\""))
    return Heredoc(name=name, content="", fd=int(match.group(1) or 0),
                   chomp=match.group(2) == "-", expand=not quoted)


def _heredoc_markers(line: str) -> list[Heredoc]:
    """The heredocs a line opens; none when its quotes do not close (the shell would not run it)."""
    if "<<" not in line:
        return []
    try:
        return [m for m in map(parse_heredoc_marker, split_raw_words(line)) if m is not None]
    except SubstitutionError:
        return []


def split_instruction(line: str, number: int, end: int) -> RawInstruction:
    """One logical line → keyword, flags and argument text; a JSON array is recognised here."""
    parts = line.strip().split(None, 1)
    keyword = parts[0].upper() if parts else ""
    flags, args = extract_flags(parts[1]) if len(parts) > 1 else ([], "")
    args = args.strip()
    try:
        as_json = parse_json_array(args) if keyword in _JSON_CAPABLE else None
    except DockerfileError as err:
        raise DockerfileError(err.reason, number) from None
    return RawInstruction(keyword, args, line, number, end, tuple(flags), (), as_json)


_JSON_CAPABLE = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})


def _strip_continuation(line: str, escape: str) -> tuple[str, bool]:
    """A line ending in the escape token (blanks after it allowed) continues, unless the token before
    it is one too: two or three trailing escape tokens end the line, as in BuildKit v0.12."""
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape) and not stripped.endswith(escape * 2):
        return stripped[:-1], False
    return line, True


def parse(text: str) -> ParsedFile:
    """The Dockerfile's raw instructions in order; errors name the line they are on."""
    raw_lines = text.removeprefix("\ufeff").split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    else:
        raw_lines[-1:] = [raw_lines[-1] + "\0"] if raw_lines else []
    ends = ["" if r.endswith("\0") else "\n" for r in raw_lines]
    raw_lines = [r.removesuffix("\0") for r in raw_lines]
    lines = [r.rstrip("\r\n") for r in raw_lines]
    directives = _Directives()
    out: list[RawInstruction] = []
    warnings: list[str] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        number = i + 1
        i += 1
        directives.offer(raw.lstrip(), number)
        if _is_comment(raw):
            continue
        line, ended = _strip_continuation(raw.lstrip(), directives.escape)
        if ended and not line.strip():
            continue
        empty_continuation = False
        while not ended and i < len(lines):
            nxt = lines[i]
            i += 1
            if _is_comment(nxt):
                continue
            if not nxt.strip():
                empty_continuation = True
                continue
            more, ended = _strip_continuation(nxt, directives.escape)
            line += more
        if empty_continuation:
            warnings.append(f"[WARNING]: Empty continuation line found in:\n    {line}")
        if not line.strip():
            continue
        instruction = split_instruction(line, number, i)
        if instruction.keyword in HEREDOC_KEYWORDS and instruction.json is None:
            docs = []
            for marker in _heredoc_markers(line):
                body: list[str] = []
                while True:
                    if i >= len(lines):
                        raise DockerfileError("unterminated heredoc", number)
                    candidate = lines[i]
                    i += 1
                    if (candidate.lstrip("\t") if marker.chomp else candidate) == marker.name:
                        break
                    body.append(raw_lines[i - 1] + ends[i - 1])
                docs.append(Heredoc(marker.name, "".join(body), marker.fd, marker.chomp, marker.expand))
            if docs:
                original = line + "\n" + "".join(doc.content + doc.name + "\n" for doc in docs)
                instruction = RawInstruction(instruction.keyword, instruction.args, original, number, i,
                                             instruction.flags, tuple(docs), None)
        out.append(instruction)
    return ParsedFile(out, directives.escape, directives.found, warnings)


def warnings_text(warnings: list[str]) -> str:
    """What dockerd's builder prints to the build's output for the parser's warnings ("" for none)."""
    if not warnings:
        return ""
    return "\n".join(warnings) + "\n[WARNING]: Empty continuation lines will become errors in a future release.\n"
