"""Property-based fuzzing (hypothesis) of what takes untrusted input: references, layer tars, cp tars, filters.

Whatever the input, the code either accepts it or refuses it with the typed error its API maps to a 400;
a tar never writes outside its root.
"""
from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api.query import filters
from engine.errors import InvalidArgument as EngineInvalid
from runtime.diff.apply import apply_layer
from runtime.errors import InvalidArgument, RuntimeError_
from runtime.reference import parse
from runtime.rootfs.extract import ExtractOptions, extract
from runtime.rootfs.view import Rootfs
from runtime.mount import Mount
from tests.unit.tar_entries import d, dev, f, hard, sym, tar_bytes

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

_segment = st.sampled_from(["a", "b", "..", ".", "", "etc", "x y", "ü", "a" * 300, "\x00", "c:d"])
_path = st.lists(_segment, min_size=1, max_size=5).map("/".join) | st.text(max_size=40)
_prefix = st.sampled_from(["", "/", "./", "../", "//"])


@FUZZ
@given(st.text(max_size=300) | st.from_regex(r"[a-z0-9./:@_-]{0,80}", fullmatch=True))
def test_reference_parsing_accepts_or_refuses(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidArgument:
        return
    assert parse(str(ref)) == ref


@FUZZ
@given(st.text(max_size=200))
def test_filters_accept_or_refuse(text: str) -> None:
    try:
        out = filters({"filters": text})
    except EngineInvalid:
        return
    assert all(isinstance(v, list) for v in out.values())


@st.composite
def entries(draw: st.DrawFn) -> list:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        name = draw(_prefix) + draw(_path)
        kind = draw(st.sampled_from(["file", "dir", "sym", "hard", "dev"]))
        target = draw(_prefix) + draw(_path)
        if kind == "file":
            out.append(f(name or "x", b"data"))
        elif kind == "dir":
            out.append(d(name or "x"))
        elif kind == "sym":
            out.append(sym(name or "x", target))
        elif kind == "hard":
            out.append(hard(name or "x", target))
        else:
            out.append(dev(name or "x"))
    return out


def _outside_untouched(sandbox: Path, root: Path, *allowed: Path) -> None:
    for p in sandbox.rglob("*"):
        assert p == root or root in p.parents or p in allowed, f"{p} was written outside {root}"


def _tar(items: list) -> bytes | None:
    try:
        return tar_bytes(*items)
    except (ValueError, UnicodeError, tarfile.TarError):
        return None  # not even a tar the tarfile module can write


@FUZZ
@given(entries())
def test_layers_never_write_outside_their_root(items: list) -> None:
    data = _tar(items)
    if data is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        root = sandbox / "root"
        root.mkdir()
        try:
            apply_layer(io.BytesIO(data), [Mount(type="bind", source=str(root), options=["rbind", "rw"])])
        except RuntimeError_:
            pass
        _outside_untouched(sandbox, root)


@FUZZ
@given(entries(), st.sampled_from(["/", "/sub", "/link", "/.."]))
def test_cp_tars_never_write_outside_the_container(items: list, dest: str) -> None:
    data = _tar(items)
    if data is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        root = sandbox / "root"
        (root / "sub").mkdir(parents=True)
        (root / "link").symlink_to("/")
        (sandbox / "outside").mkdir()
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with tempfile.TemporaryFile() as spool:
                spool.write(data)
                spool.seek(0)
                try:
                    extract(Rootfs(key=("", ""), fd=fd, readonly=False, owner=(0, 0)), dest, spool, ExtractOptions())
                except RuntimeError_:
                    pass
        finally:
            os.close(fd)
        assert not any((sandbox / "outside").iterdir())
        _outside_untouched(sandbox, root, sandbox / "outside")
