"""A log file that rotates by size, as dockerd's drivers keep theirs: `name`, then `name.1` (the newest rotated)
to `name.<max-file - 1>`, gzipped to `name.N.gz` when compression is on. An entry is never split across files.

Synchronous: the shipper calls it from a worker thread.
"""
from __future__ import annotations

import collections
import contextlib
import gzip
import io
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_MODE = 0o640


class Follower:
    """A reader kept on a rotating file: each live file a rotation starts is opened for it too, in order, so a
    reader that falls behind by several rotations still reads every file in turn."""

    def __init__(self) -> None:
        self.next: collections.deque[BinaryIO] = collections.deque()  # appended in the writer's thread
        # The writer closed (its container stopped): a later run's writer, if any, does not know this reader.
        self.orphaned = False

    def close(self) -> None:
        while self.next:
            self.next.popleft().close()


@dataclass
class Opened:
    """A log's files opened at one moment: the live one (None before it exists) and the rotated ones, oldest
    first. A reader owns them; what it takes it closes itself."""

    live: BinaryIO | None
    rotated: list[io.BufferedIOBase]
    follower: Follower | None = None

    def close(self) -> None:
        for older in self.rotated:
            older.close()
        if self.live is not None:
            self.live.close()
        self.rotated, self.live = [], None


def open_files(path: Path, follower: Follower | None = None) -> Opened:
    opened = Opened(None, [], follower)
    for older in rotated(path):
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile (a container's logs going)
            opened.rotated.append(open_rotated(older))
    with contextlib.suppress(FileNotFoundError):
        opened.live = open(path, "rb")
    return opened


class RotatingFile:
    def __init__(self, path: Path, max_size: int | None, max_file: int, compress: bool) -> None:
        self.path = path
        self._max_size = max_size
        self._max_file = max_file
        self._compress = compress
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f: BinaryIO = self._open()
        self._size = self._f.seek(0, os.SEEK_END)
        # Held while files rotate: readers open them all at a moment between two rotations.
        self._lock = threading.Lock()
        self._followers: set[Follower] = set()

    def open_all(self, follow: bool) -> Opened:
        """The files opened between two rotations; with `follow`, a follower for the live files to come."""
        with self._lock:
            follower = None
            if follow:
                follower = Follower()
                self._followers.add(follower)
            return open_files(self.path, follower)

    def unfollow(self, follower: Follower) -> None:
        with self._lock:
            self._followers.discard(follower)
        follower.close()

    def _open(self) -> BinaryIO:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _MODE)
        return os.fdopen(fd, "ab")

    def write_lines(self, entries: bytes) -> None:
        """Entries one after the other, each a line."""
        if self._max_size is None or self._size + len(entries) <= self._max_size:
            self._f.write(entries)
            self._size += len(entries)
            self._f.flush()
        else:
            self.write(entries.splitlines(keepends=True))

    def write(self, entries: list[bytes]) -> None:
        """Whole entries; the file rotates before one that would take it past max-size."""
        batch: list[bytes] = []
        for entry in entries:
            if self._max_size is not None and self._size and self._size + len(entry) > self._max_size:
                self._f.write(b"".join(batch))
                batch = []
                self._rotate()
            batch.append(entry)
            self._size += len(entry)
        self._f.write(b"".join(batch))
        self._f.flush()

    def _rotate(self) -> None:
        with self._lock:
            self._rotate_locked()
            for follower in self._followers:
                follower.next.append(open(self.path, "rb"))

    def _rotate_locked(self) -> None:
        self._f.close()
        if self._max_file == 1:
            # One file allowed: it starts over, as dockerd's drivers do.
            os.truncate(self.path, 0)
        else:
            suffix = ".gz" if self._compress else ""
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}.{self._max_file - 1}{suffix}")
            for n in range(self._max_file - 2, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{self.path}.{n}{suffix}", f"{self.path}.{n + 1}{suffix}")
            os.rename(self.path, f"{self.path}.1")
            if self._compress:
                _gzip(Path(f"{self.path}.1"))
        self._f = self._open()
        self._size = 0

    def close(self) -> None:
        with self._lock:
            for follower in self._followers:
                follower.orphaned = True
        self._f.close()


def _gzip(path: Path) -> None:
    tmp = path.with_name(path.name + ".gz.tmp")
    with open(path, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.chmod(tmp, _MODE)
    os.replace(tmp, path.with_name(path.name + ".gz"))
    os.unlink(path)


def rotated(path: Path) -> list[Path]:
    """The rotated files of `path`, oldest first (the current file is not among them)."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)(\.gz)?$")
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            m = pattern.match(entry.name)
            if m:
                found.append((int(m.group(1)), Path(entry.path)))
    return [p for _, p in sorted(found, reverse=True)]


def open_rotated(path: Path) -> io.BufferedIOBase:
    """A rotated file for reading, compressed or not."""
    if path.suffix == ".gz":
        return gzip.GzipFile(path, "rb")
    return open(path, "rb")


def remove(path: Path) -> None:
    for p in [*rotated(path), path]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)
