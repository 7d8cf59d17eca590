"""Local content store: blobs/sha256/<hex>, ingests under ingest/<hash of ref>/.

Verify before visible: bytes land in the ingest's `data` file and become a blob
only by rename after size and digest match. Ingests survive a crash: a new
writer on the same ref resumes at the stored offset after re-hashing what is
already there.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

from runtime.content.store import IngestStatus
from runtime.errors import DataLoss, InvalidArgument, NotFound, Unavailable
from runtime.oci import validate_digest

_HASH_CHUNK = 1 << 20


class LocalWriter:
    def __init__(self, store: "LocalStore", ref: str, directory: Path, expected: str | None, total: int) -> None:
        self.ref = ref
        self._store = store
        self._dir = directory
        self._expected = expected
        self._total = total
        self._lockfd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Another process (a second daemon on the same root is refused, but a
            # stale tool might not be) must never interleave writes into one ingest.
            fcntl.flock(self._lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lockfd)
            raise Unavailable(f"ingest ref {ref!r} is locked by another writer")
        self._hash = hashlib.sha256()
        data = directory / "data"
        self._fh = open(data, "ab+")
        self._fh.seek(0)
        while chunk := self._fh.read(_HASH_CHUNK):
            self._hash.update(chunk)
        self.offset = self._fh.tell()
        self._fh.seek(0, os.SEEK_END)

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._hash.update(data)
        self.offset += len(data)

    @property
    def digest(self) -> str:
        """The digest of the bytes written so far (for a writer that did not know what to expect)."""
        return "sha256:" + self._hash.hexdigest()

    def truncate(self) -> None:
        self._fh.seek(0)
        self._fh.truncate()
        self._hash = hashlib.sha256()
        self.offset = 0

    def commit(self, size: int, expected: str) -> str:
        self._fh.flush()
        if size and self.offset != size:
            if self.offset > size:
                # More bytes than the blob has can never become it: keep nothing, or every later fetch of this
                # digest would resume after them and fail the same way.
                self.close()
                self._store.abort(self.ref)
            raise DataLoss(f"unexpected commit size {self.offset}, expected {size} for {expected}")
        actual = "sha256:" + self._hash.hexdigest()
        if actual != expected:
            # The bytes are worthless: keep nothing so a retry starts clean.
            self.close()
            self._store.abort(self.ref)
            raise DataLoss(f"unexpected commit digest {actual}, expected {expected}")
        target = self._store.path(expected)
        target.parent.mkdir(parents=True, exist_ok=True)
        src = self._dir / "data"
        os.chmod(src, 0o444)
        os.replace(src, target)
        self.close()
        self._store.abort(self.ref)
        return actual

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        if self._lockfd >= 0:
            os.close(self._lockfd)
            self._lockfd = -1
        self._store._release(self.ref)


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs" / "sha256"
        self._ingest = root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def path(self, digest: str) -> Path:
        validate_digest(digest)
        return self._blobs / digest.split(":", 1)[1]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"content {digest} not found") from None

    def _ingest_dir(self, ref: str) -> Path:
        if not ref or len(ref) > 1024:
            raise InvalidArgument("ingest ref must be 1 to 1024 characters")
        return self._ingest / hashlib.sha256(ref.encode()).hexdigest()

    def writer(self, ref: str, expected: str | None = None, total: int = 0) -> LocalWriter:
        if expected is not None:
            validate_digest(expected)
        with self._lock:
            if ref in self._active:
                raise Unavailable(f"ingest ref {ref!r} is locked by another writer")
            self._active.add(ref)
        try:
            directory = self._ingest_dir(ref)
            directory.mkdir(parents=True, exist_ok=True)
            meta = directory / "ref.json"
            previous = json.loads(meta.read_text()) if meta.exists() else {}
            if previous.get("expected") not in (None, expected):
                # Same ref, different content: the old bytes cannot be resumed.
                (directory / "data").unlink(missing_ok=True)
            meta.write_text(json.dumps({"ref": ref, "expected": expected, "total": total, "started": time.time()}))
            return LocalWriter(self, ref, directory, expected, total)
        except BaseException:
            self._release(ref)
            raise

    def _release(self, ref: str) -> None:
        with self._lock:
            self._active.discard(ref)

    def abort(self, ref: str) -> None:
        directory = self._ingest_dir(ref)
        if directory.exists():
            hidden = directory.with_name("." + directory.name + f".del{os.getpid()}.{time.monotonic_ns()}")
            os.replace(directory, hidden)
            shutil.rmtree(hidden, ignore_errors=True)

    def ingests(self) -> list[IngestStatus]:
        out: list[IngestStatus] = []
        for d in self._ingest.iterdir():
            if d.name.startswith("."):
                continue
            try:
                meta = json.loads((d / "ref.json").read_text())
                st = (d / "data").stat()
            except (FileNotFoundError, ValueError):
                continue
            out.append(
                IngestStatus(ref=meta["ref"], offset=st.st_size, total=meta.get("total") or 0,
                             expected=meta.get("expected"), updated=st.st_mtime)
            )
        return out

    def drop_abandoned(self, idle: float) -> list[str]:
        """Remove the ingests no writer holds that have not grown for `idle` seconds: a writer killed with its
        runtime leaves its bytes for a resume, which a pull started again makes within moments (no lease holds
        them, and `system df` does not count them)."""
        dropped = []
        cutoff = time.time() - idle
        for status in self.ingests():
            with self._lock:
                if status.ref in self._active or status.updated > cutoff:
                    continue
                self._active.add(status.ref)
            try:
                self.abort(status.ref)
                dropped.append(status.ref)
            finally:
                self._release(status.ref)
        return dropped

    def walk(self) -> list[str]:
        return sorted("sha256:" + p.name for p in self._blobs.iterdir() if not p.name.startswith("."))

    def delete(self, digest: str) -> None:
        p = self.path(digest)
        hidden = p.with_name("." + p.name + ".del")
        try:
            os.replace(p, hidden)
        except FileNotFoundError:
            raise NotFound(f"content {digest} not found") from None
        hidden.unlink()

    def verify(self, digest: str) -> bool:
        h = hashlib.sha256()
        with open(self.path(digest), "rb") as fh:
            while chunk := fh.read(_HASH_CHUNK):
                h.update(chunk)
        return "sha256:" + h.hexdigest() == digest

    def cleanup(self) -> None:
        """Drop leftovers of deletes interrupted by a crash."""
        for d in (self._blobs, self._ingest):
            for p in d.iterdir():
                if p.name.startswith(".") and ".del" in p.name:
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
