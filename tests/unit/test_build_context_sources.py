"""COPY/ADD sources in a build context (Go's filepath.Match, dockerd's words) and their cache checksums."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engine.builder.context.checksum import checksum
from engine.builder.context.paths import clean, glob_match
from engine.builder.context.sources import resolve_sources
from engine.errors import InvalidArgument


def _tree(root: Path) -> Path:
    (root / "sub" / "deep").mkdir(parents=True)
    for rel, data in {"a.txt": "a", "b.txt": "b", "c.md": "c", "x": "x", "sub/s.txt": "s", "sub/deep/d.txt": "d",
                      "*.txt": "star", "[ab].txt": "class"}.items():
        (root / rel).write_text(data)
    os.symlink("sub/s.txt", root / "link")
    os.symlink("/sub/deep", root / "abslink")
    os.symlink("../outside", root / "escape")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    return root


def _rels(root: Path, sources: list[str], **kw: bool) -> list[str]:
    return [s.rel for s in resolve_sources(root, sources, **kw)]


@pytest.mark.parametrize("pattern,name,expected", [
    ("*.txt", "a.txt", True),
    ("*.txt", "sub/a.txt", False),
    ("*/*.txt", "sub/a.txt", True),
    ("?.txt", "a.txt", True),
    ("?.txt", "ab.txt", False),
    ("[ab].txt", "b.txt", True),
    ("[^ab].txt", "c.txt", True),
    ("[^ab].txt", "a.txt", False),
    ("[a-c]", "b", True),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
    ("a[/]b", "a/b", True),
    ("*", "", True),
])
def test_go_filepath_match(pattern: str, name: str, expected: bool) -> None:
    assert glob_match(pattern, name) is expected


@pytest.mark.parametrize("path,expected", [
    ("", "."), ("a//b", "a/b"), ("a/./b/", "a/b"), ("a/../..", ".."), ("/../x", "/x"), ("//x", "/x"),
])
def test_go_clean(path: str, expected: str) -> None:
    assert clean(path) == expected


def test_wildcards_in_walk_order(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert _rels(root, ["*.txt"]) == ["*.txt", "[ab].txt", "a.txt", "b.txt"]
    assert _rels(root, ["sub/*.txt", "c.md"]) == ["sub/s.txt", "c.md"]
    assert _rels(root, ["*/*/*.txt"]) == ["sub/deep/d.txt"]
    assert _rels(root, ["[ab].txt"]) == ["a.txt", "b.txt"]
    assert _rels(root, ["./*.md", "/x"]) == ["c.md", "x"]


def test_names_with_wildcard_characters_taken_literally(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert _rels(root, ["*.txt"], allow_wildcards=False) == ["*.txt"]
    assert _rels(root, ["[*].txt"]) == ["*.txt"]
    # As in dockerd, an escaped wildcard makes no pattern: the name is looked up as written.
    with pytest.raises(InvalidArgument, match=r"stat \\\*\.txt: file does not exist"):
        resolve_sources(root, ["\\*.txt"])


def test_directory_and_root_sources(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (src,) = resolve_sources(root, ["sub/"])
    assert (src.rel, src.path) == ("sub", root / "sub")
    assert [s.path for s in resolve_sources(root, [".", "/"])] == [root, root]


def test_symlink_sources_followed_inside_the_context(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (link,) = resolve_sources(root, ["link"])
    assert (link.rel, link.name, link.path) == ("link", "link", root / "sub" / "s.txt")
    (absolute,) = resolve_sources(root, ["abslink/d.txt"])
    assert absolute.path == root / "sub" / "deep" / "d.txt"


def test_missing_source_in_dockerds_words(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    with pytest.raises(InvalidArgument) as e:
        resolve_sources(root, ["nope.txt"])
    assert e.value.message == ("COPY failed: file not found in build context or excluded by .dockerignore: "
                               "stat nope.txt: file does not exist")
    with pytest.raises(InvalidArgument, match="^ADD failed: file not found .* stat sub/no: file does not exist$"):
        resolve_sources(root, ["sub/no"], instruction="ADD")


def test_unmatched_wildcards(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    with pytest.raises(InvalidArgument) as e:
        resolve_sources(root, ["*.none"])
    assert e.value.message == "COPY failed: no source files were specified"
    assert _rels(root, ["*.none", "x"]) == ["x"]  # dockerd counts what all sources bring together
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        resolve_sources(root, ["[a-"])


@pytest.mark.parametrize("source", ["../x", "sub/../../x", "escape", "escape/y"])
def test_paths_outside_the_context_refused(tmp_path: Path, source: str) -> None:
    root = _tree(tmp_path / "ctx")
    (tmp_path / "outside").write_text("secret")
    with pytest.raises(InvalidArgument, match="^COPY failed: forbidden path outside the build context: "):
        resolve_sources(root, [source])


def test_symlink_loop(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    with pytest.raises(InvalidArgument, match="too many levels of symbolic links"):
        resolve_sources(root, ["loop1"])


def _context(root: Path) -> Path:
    (root / "app" / "lib").mkdir(parents=True)
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "app" / "lib" / "util.py").write_text("X = 1\n")
    (root / "big.bin").write_bytes(os.urandom(1 << 16))
    os.symlink("lib/util.py", root / "app" / "u.py")
    return root


def _key(root: Path, *sources: str) -> str:
    return checksum(resolve_sources(root, list(sources)))


def test_checksum_same_content_elsewhere_is_the_same(tmp_path: Path) -> None:
    one = _context(tmp_path / "one")
    two = tmp_path / "two"
    shutil.copytree(one, two, symlinks=True)
    assert _key(one, "app", "big.bin") == _key(two, "app", "big.bin")
    assert _key(one, "app").startswith("sha256:")


def test_checksum_ignores_mtime(tmp_path: Path) -> None:
    root = _context(tmp_path)
    before = _key(root, "app", "big.bin")
    for path in (root / "app" / "main.py", root / "big.bin", root / "app"):
        os.utime(path, ns=(1, 1))
    assert _key(root, "app", "big.bin") == before


@pytest.mark.parametrize("change", [
    lambda r: (r / "app" / "main.py").write_text("print('bye')\n"),
    lambda r: (r / "app" / "main.py").chmod(0o755),
    lambda r: os.chown(r / "app" / "lib" / "util.py", 1000, 1000),
    lambda r: (r / "app" / "main.py").rename(r / "app" / "start.py"),
    lambda r: (r / "app" / "u.py").unlink() or os.symlink("main.py", r / "app" / "u.py"),
    lambda r: (r / "app" / "new").mkdir(),
    lambda r: (r / "app" / "lib").chmod(0o700),
])
def test_checksum_changes_with_what_would_be_copied(tmp_path: Path, change: object) -> None:
    root = _context(tmp_path)
    before = _key(root, "app")
    change(root)  # type: ignore[operator]
    assert _key(root, "app") != before


def test_checksum_file_source_named_after_itself(tmp_path: Path) -> None:
    root = tmp_path
    (root / "a.txt").write_text("same")
    (root / "b.txt").write_text("same")
    assert _key(root, "a.txt") != _key(root, "b.txt")
    assert _key(root, "a.txt", "b.txt") != _key(root, "b.txt", "a.txt")


def test_checksum_of_symlink_source_follows_it(tmp_path: Path) -> None:
    root = _context(tmp_path)
    (root / "target.py").write_text("X = 1\n")
    os.symlink("target.py", root / "alias.py")
    (root / "plain").mkdir()
    (root / "plain" / "alias.py").write_text("X = 1\n")
    assert _key(root, "alias.py") == checksum(resolve_sources(root / "plain", ["alias.py"]))


def test_checksum_memo_reads_each_file_once(tmp_path: Path) -> None:
    root = _context(tmp_path)
    memo: dict[tuple[int, int, int, int], str] = {}
    sources = resolve_sources(root, ["app", "big.bin"])
    first = checksum(sources, memo)
    assert len(memo) == 3  # main.py, util.py, big.bin
    (root / "big.bin").chmod(0o600)  # metadata only: the memo still serves the content
    assert checksum(sources, memo) != first
    assert len(memo) == 3
