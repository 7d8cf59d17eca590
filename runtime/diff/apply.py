"""Apply an (uncompressed) image layer tar to a snapshot.

Layer tars use the Docker/OCI conventions: `dir/.wh.NAME` deletes NAME from the
layers below, `dir/.wh..wh..opq` hides everything the layers below had in `dir`.
How those are realised depends on the snapshot's mounts:

* one overlay mount with an upperdir: the tar is written straight into the upper
  dir in overlayfs' own format (whiteouts become 0/0 char devices, opaque dirs get
  trusted.overlay.opaque=y), consulting the lowerdirs only to see the merged view;
* one bind mount: the tar is applied to the bind source as a plain tree (whiteouts
  delete, opaque markers delete what this layer did not write);
* anything else: the mounts are mounted on a temp dir and the tar is applied there
  as a plain tree.

This module picks that tree and reads the stream; apply_tree writes the entries
(and states the security model against a hostile tar), apply_overlay knows
overlayfs' format.
"""
from __future__ import annotations

import tarfile

from runtime import mount as mountlib
from runtime.diff.apply_tree import TreeApplier
from runtime.diff.decompress import Readable
from runtime.errors import DataLoss, InvalidArgument
from runtime.mount import Mount
from runtime.untrusted_tar import CHUNK


class _CountingReader:
    """Counts what tarfile pulls from the stream (the return value of apply_layer)."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data


def _apply_tree(reader: _CountingReader, root: str, lowers: list[str], overlay: bool) -> None:
    applier = TreeApplier(root, lowers, overlay)
    try:
        try:
            # A stream ("r|") is only read; typeshed's file protocol asks for write/seek/tell as well.
            tar = tarfile.open(fileobj=reader, mode="r|")  # type: ignore[call-overload]
        except tarfile.ReadError:
            if reader.count == 0:
                return  # a zero-byte layer is an empty layer
            raise
        with tar:
            applier.apply(tar)
    finally:
        applier.close()


def apply_layer(fileobj: Readable, mounts: list[Mount]) -> int:
    """Unpack an uncompressed layer tar onto the snapshot exposed by `mounts`.

    Blocking (run it in a thread). Returns the number of bytes read from `fileobj`,
    which is drained to EOF so a digesting wrapper sees the whole stream.
    Raises InvalidArgument for entries that are unsafe or not allowed (device nodes),
    DataLoss for a corrupt or truncated tar.
    """
    for m in mounts:
        if mountlib.parse_options(m.options).flags & mountlib.MS_RDONLY:
            raise InvalidArgument(f"cannot apply a layer to read-only mount {m.source!r}")
    reader = _CountingReader(fileobj)
    try:
        if len(mounts) == 1 and mounts[0].type == "overlay":
            dirs = mountlib.overlay_dirs(mounts[0])
            if dirs is None:
                raise InvalidArgument("cannot apply a layer to an overlay without upperdir (read-only)")
            _apply_tree(reader, dirs[0], dirs[1], overlay=True)
        elif len(mounts) == 1 and mountlib.is_bind(mounts[0]):
            _apply_tree(reader, mounts[0].source, [], overlay=False)
        else:
            with mountlib.mounted(mounts) as target:
                _apply_tree(reader, target, [], overlay=False)
        while reader.read(CHUNK):
            pass
    except tarfile.TarError as e:
        raise DataLoss(f"invalid layer tar: {e}") from e
    return reader.count
