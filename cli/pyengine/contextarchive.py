"""`docker context export/import`'s archive: a tar of `meta.json` (the context's metadata) and
`tls/<endpoint>/<file>` (its TLS material), as the docker CLI writes it; import also reads the zip form
older docker CLIs wrote. An archive names files only inside its own context: an endpoint or file name that
is not a plain name is refused, so an import never writes outside the context's TLS directory."""
from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from typing import IO, Any

from cli.pyengine import contextstore as store
from cli.pyengine.api import CLIError

META = "meta.json"
# The docker CLI reads at most this much of an archive.
LIMIT = 10 << 20


def export(meta: dict[str, Any], tls: dict[str, dict[str, bytes]], out: IO[bytes]) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, META, 0o644, json.dumps(meta, separators=(",", ":")).encode())
        _add(tar, "tls", 0o700, None)
        for endpoint, files in tls.items():
            _add(tar, f"tls/{endpoint}", 0o700, None)
            for file, data in files.items():
                _add(tar, f"tls/{endpoint}/{file}", 0o600, data)


def _add(tar: tarfile.TarFile, name: str, mode: int, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mode = mode
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def read(name: str, source: IO[bytes]) -> tuple[dict[str, Any], dict[str, dict[str, bytes]]]:
    """The metadata (renamed `name`) and TLS material of an exported context."""
    body = source.read(LIMIT + 1)
    if len(body) > LIMIT:
        raise CLIError(f"the context archive is larger than {LIMIT >> 20} MiB")
    meta: dict[str, Any] | None = None
    tls: dict[str, dict[str, bytes]] = {}
    for path, data in _files(body):
        if path == META:
            meta = _metadata(data, name)
        elif path.startswith("tls/"):
            endpoint, _, file = path[len("tls/"):].partition("/")
            if not _plain(endpoint) or not _plain(file):
                raise CLIError("archive format is invalid")
            tls.setdefault(endpoint, {})[file] = data
    if meta is None:
        raise CLIError("invalid context: no metadata found")
    return meta, tls


def _files(body: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each regular file; other entries are passed over, as the docker CLI does."""
    if body[:4] == b"PK\x03\x04":
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                for entry in archive.infolist():
                    if not entry.is_dir():
                        yield entry.filename, archive.read(entry)
        except (zipfile.BadZipFile, OSError) as e:
            raise CLIError(f"invalid context archive: {e}") from None
        return
    # The docker CLI's export ends after the last file's data, without its padding or the end-of-archive
    # blocks (its tar writer is closed after the stream it writes to); Go's reader takes that as the end.
    body += b"\0" * (-len(body) % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE)
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as archive:
            for member in archive:
                if member.isreg():
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    yield member.name, extracted.read()
    except tarfile.TarError as e:
        raise CLIError(f"invalid context archive: {e}") from None


def _metadata(data: bytes, name: str) -> dict[str, Any]:
    try:
        meta = json.loads(data)
    except ValueError as e:
        raise CLIError(f"invalid context metadata: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("Endpoints", {}), dict):
        raise CLIError("invalid context metadata: not a context's meta.json")
    return {**meta, "Name": name}


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name


def stored(name: str) -> tuple[dict[str, Any], dict[str, dict[str, bytes]]]:
    """A context as `export` writes it: the default one from the CLI's own host settings."""
    if name == store.DEFAULT:
        from cli.pyengine import hosts

        return ({"Name": name, "Metadata": {},
                 "Endpoints": {"docker": {"Host": hosts.default_host(), "SkipTLSVerify": False}}}, {})
    return store.load(name), store.tls_tree(name)
