""".dockerignore reading and matching with Docker's rules (moby/patternmatcher, ignorefile, the CLI's walk)."""
from __future__ import annotations

import pytest

from engine.builder.context.dockerignore import DockerIgnore, read_patterns
from engine.errors import InvalidArgument

# (patterns, path, excluded by patternmatcher's MatchesOrParentMatches)
MATCHES = [
    (["**"], "file", True),
    (["**"], "dir/file", True),
    (["**/"], "file", True),
    (["**/**"], "dir/file", True),
    (["dir/**"], "dir/file", True),
    (["dir/**"], "dir/sub/file", True),
    (["dir/**"], "dir", False),
    (["dir/**"], "dirx/file", False),
    (["**/dir2/*"], "dir/dir2/file", True),
    (["**/dir2/*"], "dir/dir2/dir3/file", True),  # a parent directory matches
    (["**/dir2/*"], "dir2/file", True),
    (["**/dir2/*"], "dir/dir2", False),
    (["**file"], "file", True),
    (["**file"], "dir/file", True),
    (["**file"], "barfile", True),  # a leading ** with a literal rest only asks for that suffix
    (["**/file"], "barfile", False),
    (["**/file"], "file", True),
    (["**/file"], "a/b/file", True),
    (["**/*.go"], "main.go", True),
    (["**/*.go"], "a/b/main.go", True),
    (["**/*.go"], "a/b/main.py", False),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**/b"], "a/xb", False),
    (["a/**/b"], "a/x/b/c", True),  # its parent a/x/b matches
    (["foo**"], "foobar/x", True),
    (["foo**"], "fo", False),
    (["*.go"], "main.go", True),
    (["*.go"], "dir/main.go", False),
    (["*"], "dir/file", True),  # the parent dir matches
    (["*/*.go"], "dir/main.go", True),
    (["*/*.go"], "main.go", False),
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["[a-c]x"], "bx", True),
    (["[a-c]x"], "dx", False),
    (["[^a]x"], "bx", True),
    (["[^a]x"], "ax", False),
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "axb", False),
    (["foo.bar"], "foo.bar", True),
    (["foo.bar"], "fooxbar", False),  # '.' is literal
    (["a+b(c)"], "a+b(c)", True),
    (["docs"], "docs", True),
    (["docs"], "docs/README.md", True),
    (["docs"], "docs/a/b/c", True),
    (["docs"], "docsx", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["!README.md", "*.md"], "README.md", True),  # the last pattern that applies wins
    (["*.md", "!README.md", "README.md"], "README.md", True),
    (["*", "!src"], "src/main.py", False),
    (["*", "!src"], "tests/x.py", True),
    (["*", "!src", "src/*.pyc"], "src/a.pyc", True),
    (["*", "!src", "src/*.pyc"], "src/a.py", False),
    (["**/*.log", "!keep/**"], "keep/a.log", False),
    (["**/*.log", "!keep/**"], "other/a.log", True),
    (["/abs"], "abs", True),
    (["/abs/x"], "abs/x", True),
    (["./rel"], "rel", True),
    (["x/../y"], "y", True),
    (["x/../y"], "x", False),
    (["a//b"], "a/b", True),
    (["  spaced  "], "spaced", True),
    (["! keep", "*"], "keep", True),
    (["*", "! keep"], "keep", False),
    (["Dockerfile"], "Dockerfile", True),
    (["*"], ".", False),  # the root is never excluded
    ([], "anything", False),
]


@pytest.mark.parametrize("lines,path,expected", MATCHES)
def test_matches(lines: list[str], path: str, expected: bool) -> None:
    assert DockerIgnore.parse("\n".join(lines)).matches(path) is expected


# (patterns, path, left out of the context by the docker CLI's walk)
EXCLUDES = [
    (["dir", "!dir/keep"], "dir/keep", False),
    (["dir", "!dir/keep"], "dir/other", True),
    (["dir", "!dir/keep"], "dir", True),
    (["dir", "!dir/sub/keep"], "dir/sub/keep", False),
    # No exception starts with "dir/": the directory hides everything below it.
    (["dir", "!*/keep"], "dir/keep", True),
    (["dir", "!dir2/keep"], "dir/keep", True),
    (["*", "!src"], "src/deep/file", False),
    (["node_modules"], "node_modules/a/b/c.js", True),
    (["**/node_modules"], "web/node_modules/x.js", True),
    (["*.pyc"], "pkg/mod.pyc", False),
    (["**/*.pyc"], "pkg/mod.pyc", True),
    ([".git"], ".gitignore", False),
    ([".git"], ".git/HEAD", True),
]


@pytest.mark.parametrize("lines,path,expected", EXCLUDES)
def test_excludes(lines: list[str], path: str, expected: bool) -> None:
    assert DockerIgnore.parse("\n".join(lines)).excludes(path) is expected


def test_exception_reaching_inside_is_honoured_even_when_matches_alone_differs() -> None:
    ignore = DockerIgnore.parse("dir\n!*/keep\n")
    assert ignore.matches("dir/keep") is False
    assert ignore.excludes("dir/keep") is True


def test_reading_the_file() -> None:
    text = "\ufeff# a comment\n\n  *.log  \n #not a comment\n!  /keep.log\n/abs/../x\n!\t\n"
    assert read_patterns(text) == ["*.log", "#not a comment", "!keep.log", "x", "!"]


def test_comment_only_at_line_start() -> None:
    ignore = DockerIgnore.parse("# secret\n #secret\n")
    assert ignore.matches("secret") is False
    assert ignore.matches("#secret") is True


def test_lone_exclamation_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match='illegal exclusion pattern: "!"'):
        DockerIgnore.parse("*.log\n!\n")


@pytest.mark.parametrize("bad", ["[", "a[", "[]a]", "[a-]", "x\\"])
def test_malformed_pattern_is_an_error(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        DockerIgnore.parse(bad)


def test_lines_kept_in_order() -> None:
    assert DockerIgnore.parse("b\n!a\nc/").lines == ["b", "!a", "c"]
