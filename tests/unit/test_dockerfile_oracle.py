"""Our Dockerfile parser against moby/buildkit's own (the `dockerfile` package binds its Go parser).

For every Dockerfile of the corpus both must agree on each instruction's keyword, lines, flags, JSON
form, arguments as BuildKit's parser cuts them, and heredocs; where BuildKit's parser refuses a file,
ours must refuse it too (with the line, which the binding does not give).
"""
from __future__ import annotations

import random

import pytest

from engine.builder.dockerfile import DockerfileError, parse_dockerfile
from engine.builder.dockerfile.build import BUILDERS
from engine.builder.dockerfile.parser import RawInstruction, parse
from engine.builder.dockerfile.syntax import parse_json_array, parse_name_values, parse_words, split_whitespace

dockerfile = pytest.importorskip("dockerfile")

CORPUS = [
    "FROM a\nRUN echo a \\\n  b\n",
    "FROM a\nRUN echo a \\\n# comment\n  b \\\n\n  c\n",
    "# escape=`\nFROM a\nRUN echo a `\n  b\nCOPY c:\\x d\n",
    "# syntax=docker/dockerfile:1\n# escape=\\\nFROM a\n",
    "\ufeffFROM a\r\nRUN echo \\\r\n b\r\n",
    "from a AS b\nrun x\n   Cmd   [\"a\",  \"b\"]  \n",
    "FROM --platform=linux/amd64 alpine AS b\nRUN --mount=type=cache,target=/c --network=none echo\n"
    "COPY --from=b --chown=1:1 --chmod=755 --link a b\n",
    'FROM a\nRUN --mount=type=secret,id="a b" -- --x\n',
    "FROM a\nRUN <<EOF\necho hi\n\necho there\nEOF\nCMD x\n",
    "FROM a\nCOPY <<EOF /x\ncontent $X\nEOF\n",
    "FROM a\nRUN <<A cat - && cat /dev/fd/3 3<<B\naaa\nA\nbbb\nB\n",
    "FROM a\nRUN <<-EOF\n\techo tab\n\tEOF\n",
    "FROM a\nCOPY <<'EOF' /y\n$NOEXP\nEOF\nADD <<\"A\" <<B /z/\n1\nA\n2\nB\n",
    "FROM a\nRUN <<EOF bash \\\n -e\nx\nEOF\n",
    "FROM a\nRUN echo \"<<EOF\" \\<<NO 'a<<b'\n",
    "FROM a\nRUN [\"<<EOF\"]\n",
    "FROM a\nRUN --mount=type=cache,target=/x <<EOF\nx\nEOF\n",
    "FROM a\nRUN <<EOF\n# not a comment\nEOF\n",
    "FROM a\nENV a=b c=d\nENV x y  z\nENV e=\"f g\" h=i\\ j\nLABEL \"a b\"=c d='e f'\n",
    "FROM a\nARG x=1 y \"z=2 3\"\nARG\n",
    "FROM a\nEXPOSE 80/tcp  443\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\n",
    "FROM a\nHEALTHCHECK --interval=5s CMD curl x\nHEALTHCHECK NONE\nHEALTHCHECK CMD [\"a\", \"b\"]\n",
    "FROM a\nUSER a:b\nWORKDIR /x y\nSTOPSIGNAL 9\nMAINTAINER me <m@x>\nSHELL [\"/bin/bash\", \"-c\"]\n",
    "FROM a\nCMD [\"a\"] trailing\nCMD [bad\nCMD {\"a\": 1}\nCMD []\n",
    "FROM a\nRUN a \\  \n b\nRUN c \\",
    "FROM a\n\n\n   \n#c\n  # d\nRUN x\n",
    "FROM a\nONBUILD RUN echo hi\n",
    "# escape=x\nFROM a\n",
    "FROM a\n\n\n\nCMD [\"a\", 1]\n",
    "FROM a\nRUN <<EOF\necho\n",
    "FROM a\nENV a=b c\n",
    "FROM a\nLABEL a\n",
    "FROM a\nCOPY [\"a\", null] /b\n",
 "FROM a\nRUN echo \\ \t\n x\n",
 "FROM a\nRUN <<E\"O\"F\n$x\nEOF\n",
 "FROM a\nCOPY --chown=1 <<EOF /x\nhi\nEOF\n",
 "FROM a\nRUN -- x\n",
 "FROM a\nRUN --mount=a=b\\ c x\n",
 "FROM a\nRUN\n",
 "FROM a\nRUN a \\\n   # indented comment\n b\n",
 "FROM a\nRUN echo # not comment\n",
 "FROM a\nRUN\tx\ty\n",
 "FROM a\nCMD\n",
 "\ufeff# escape=`\nFROM a\n",
 "# escape = `\nFROM a\n",
 "#escape=`\nFROM a\n",
 "# ESCAPE=`\nFROM a\nRUN a`\nb\n",
 "FROM a\nCOPY [\"<<EOF\", \"/x\"]\n",
 "FROM a\nRUN <<EOF cat && <<EOF cat\n1\nEOF\n2\nEOF\n",
 "FROM a\nRUN 3<<EOF cat <&3\nx\nEOF\n",
 "FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\n",
 "FROM a\nRUN <<EOF\nx\nEOF",
 "FROM a\nRUN cat <<EOF\nx\nEOF\n",
 "FROM a\nRUN cat<<EOF\nx\nEOF\n",
 "FROM a\nRUN <<\nx\n",
 "FROM a\nRUN <<'EOF\nx\n",
 "FROM a\nENV\n",
 "FROM a\nENV a=\nENV b= c\n",
 "FROM a\nLABEL a=\"b\nLABEL c='d\n",
 "FROM a\nARG a\\ b=c 'd e'\n",
 "FROM a\nEXPOSE\n",
 "FROM a\nVOLUME [\"/a\"\n",
 "FROM a\nHEALTHCHECK\n",
 "FROM a\nHEALTHCHECK CMD\n",
 "FROM a\nHEALTHCHECK  CMD   x  y\n",
 "FROM a\nONBUILD\n",
 "FROM a\nONBUILD ONBUILD x\n",
 "FROM a\nRUN a\\\\\nRUN b\n",
 "# escape=`\nFROM a\nRUN a\\\nRUN b`\n c\n",
 "FROM a\nCMD [\"a\\u0041\"]\n",
 "FROM a\nRUN [\"a\",]\n",
 "FROM a\nSHELL [\"a\"]  \n",
 "FROM a\n  \\\n RUN x\n",
 "FROM a\nRUN x \\\n\\\n y\n",
 "FROM a\nRUN --mount='type=bind,target=/x' --x=\"\" y\n",
 "FROM a\nRUN --a --b=c\n",
 "FROM a\nRUN --\n",
]


def _value(raw: RawInstruction, escape: str) -> tuple[str, ...]:
    """BuildKit's parser's `value` for an instruction, made from ours."""
    if raw.keyword not in BUILDERS:
        return ("",)
    if raw.json is not None:
        return tuple(raw.json)
    if raw.keyword in ("ENV", "LABEL"):
        return tuple(x for pair in parse_name_values(raw.args, raw.keyword, escape) for x in pair)
    if raw.keyword == "ARG":
        return tuple(parse_words(raw.args, escape))
    if raw.keyword in ("FROM", "EXPOSE", "COPY", "ADD", "VOLUME"):
        return tuple(split_whitespace(raw.args))
    if raw.keyword == "HEALTHCHECK" and raw.args:
        kind, _, rest = raw.args.partition(" ")
        return (kind, rest.strip()) if rest.strip() else (kind,)
    return (raw.args,) if raw.args else ()


@pytest.mark.parametrize("text", CORPUS)
def test_agrees_with_buildkit(text: str) -> None:
    try:
        theirs = dockerfile.parse_string(text)
    except dockerfile.GoParseError:
        with pytest.raises(DockerfileError) as err:
            parse_dockerfile(text)
        assert err.value.line is not None
        return
    parsed = parse(text)
    assert len(parsed.instructions) == len(theirs)
    for ours, their in zip(parsed.instructions, theirs):
        assert ours.keyword == their.cmd.upper()
        assert (ours.start_line, ours.end_line) == (their.start_line, their.end_line)
        assert ours.flags == their.flags
        assert ours.original == their.original
        assert [(h.name, h.fd, h.content) for h in ours.heredocs] == [
            (h.name, h.file_descriptor, h.content) for h in their.heredocs]
        if ours.keyword == "ONBUILD":
            assert (ours.args.split(None, 1) or [None])[0] == (their.sub_cmd or None)
            continue
        if ours.keyword == "HEALTHCHECK":
            kind, _, rest = ours.args.partition(" ")
            exec_form = parse_json_array(rest)
            if exec_form is not None:
                assert their.json and their.value == (kind, *exec_form)
                continue
        assert (ours.json is not None) == their.json
        assert _value(ours, parsed.escape) == their.value


PIECES = ["RUN a \\", "  b", "", "# c", "  # d", "\t", "RUN <<EOF", "EOF", "\tEOF", "RUN <<-EOF cat", "x $y",
          "COPY <<A <<B /d/", "A", "B", "ENV a=b \\", "c=d", 'LABEL "x y"=z', 'CMD ["a", "b"]', "CMD [1]",
          "ARG x=1 \\", "RUN --mount=type=cache,target=/x \\", "--network=none y", "\\", "RUN 'a", "b'", '"',
          "ENV a", "HEALTHCHECK CMD x", "ONBUILD RUN y", "RUN a\\\\", "EXPOSE 1 2", "RUN <<'E'", "E", "`",
          "RUN x `", "WORKDIR /a \\ ", "FOO", 'RUN ["a" \\', ', "b"]', "\r", "RUN c\r"]


@pytest.mark.parametrize("seed", range(4))
def test_random_files_agree(seed: int) -> None:
    """Random files made of awkward lines; a file ending in a lone continuation is left out (the
    binding gives an instruction with no keyword there, which no Dockerfile can use)."""
    rng = random.Random(seed)
    checked = 0
    while checked < 150:
        head = rng.choice(["", "# escape=`\n", "# syntax=x\n"])
        body = "\n".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8)))
        text = head + "FROM a\n" + body + rng.choice(["", "\n"])
        try:
            if any(c.cmd is None for c in dockerfile.parse_string(text)):
                continue
        except dockerfile.GoParseError:
            pass
        test_agrees_with_buildkit(text)
        checked += 1
