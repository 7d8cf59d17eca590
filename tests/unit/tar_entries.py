"""Building test tars entry by entry: each helper returns (TarInfo, data or None) for tar_bytes()."""
from __future__ import annotations

import io
import tarfile


def f(name, data=b"", mode=0o644, uid=0, gid=0, mtime=1_600_000_000, xattrs=None):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), mode, uid, gid, mtime
    if xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return ti, data


def d(name, mode=0o755, mtime=1_600_000_000):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, mtime
    return ti, None


def sym(name, target):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = tarfile.SYMTYPE, target
    return ti, None


def hard(name, target):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = tarfile.LNKTYPE, target
    return ti, None


def fifo(name):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode = tarfile.FIFOTYPE, 0o640
    return ti, None


def dev(name, kind=tarfile.CHRTYPE, major=1, minor=3):
    ti = tarfile.TarInfo(name)
    ti.type, ti.devmajor, ti.devminor = kind, major, minor
    ti.mode = 0o666
    return ti, None


def tar_bytes(*entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()
