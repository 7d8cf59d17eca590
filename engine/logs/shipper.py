"""Ships one container's captured output (conmon's k8s-file) into its log driver's files.

The capture file is a buffer: conmon starts it over (a new file renamed into place) past the
runtime's bound, so the shipper follows it across that rename, and remembers how far it got
(`<dir>/capture-offset`: the file's inode and the offset of the first byte not shipped) so an
engine restarted while the container ran picks up where it stopped. Delivery is at least once:
a crash between writing entries and saving the offset ships them again.

For the drivers that send elsewhere (syslog, gelf, fluentd, journald), each finished line is also handed to the
driver's forwarder (engine/logs/forward.py), which sends it from a thread of its own; `out` is their local cache,
or None when it is disabled.

Synchronous: the service runs `pump` in a worker thread, one at a time per container.
"""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import BinaryIO

from engine.logs.forward import Forwarder
from engine.logs.reader import Format
from engine.logs.rotation import RotatingFile
from runtime.client import RuntimeError_
from runtime.client.logs import LogRecord, parse_line

_READ = 1 << 20
MAX_ENTRY = 16 * 1024
# The start of a record of a part of a line (conmon writes one where a read of its ends mid-line).
_PART = re.compile(rb"^[^ \n]* (?:stdout|stderr) P", re.MULTILINE)


class Shipper:
    def __init__(self, capture: Path, out: RotatingFile | None, fmt: Format, state: Path,
                 forward: Forwarder | None = None) -> None:
        self._capture = capture
        self._out = out
        self._forward = forward
        self._fmt = fmt
        self._state = state
        self._f: BinaryIO | None = None
        self._offset = 0
        self._pending = b""
        # Per stream, a line conmon wrote in parts and not yet finished: where it began in the capture, and it.
        self._held: dict[str, tuple[int, LogRecord]] = {}

    @property
    def out(self) -> RotatingFile | None:
        return self._out

    def pump(self) -> int:
        """Ship what the capture holds now; how many bytes were read."""
        if self._f is None and not self._open():
            return 0
        assert self._f is not None
        total = 0
        while True:
            chunk = self._f.read(_READ)
            if not chunk:
                if not self._rotated():
                    break
                # conmon wrote the old file to its end before the rename: what is left of it comes first.
                rest = self._f.read()
                if rest:
                    total += self._ship(rest)
                self._f.close()
                self._f, self._offset, self._pending = None, 0, b""
                # A line held across the rename goes on in the new file; it can only be resumed from there.
                self._held = {stream: (0, rec) for stream, (_, rec) in self._held.items()}
                if not self._open(resume=False):
                    break
                assert self._f is not None
                continue
            total += self._ship(chunk)
        if total:
            self._save()
        return total

    def _ship(self, chunk: bytes) -> int:
        base = self._offset - len(self._pending)  # where `data` begins in the capture
        data = self._pending + chunk
        end = data.rfind(b"\n") + 1
        entries: list[bytes] = []
        at = 0
        while at < end:
            if self._held:
                stop = data.index(b"\n", at) + 1  # a record at a time until the held line is finished
            elif (part := _PART.search(data, at, end)) is not None and part.start() == at:
                stop = data.index(b"\n", at) + 1
            else:
                # The records of whole lines before the next part of one: in one piece where the format can.
                stop = end if part is None else part.start()
                whole = self._fmt.whole_lines(data[at:stop]) if self._forward is None else None
                if whole is not None and self._out is not None:
                    if entries:
                        self._out.write(entries)
                        entries = []
                    self._out.write_lines(whole)
                    at = stop
                    continue
            self._encode(data[at:stop], base + at, entries)
            at = stop
        if entries and self._out is not None:
            self._out.write(entries)
        self._pending = data[end:]
        self._offset += len(chunk)
        return len(chunk)

    def _encode(self, records: bytes, start: int, entries: list[bytes]) -> None:
        """`records`: whole lines of the capture, the first at `start` in it."""
        encode, held_lines = self._fmt.encode, self._held
        for line in records.split(b"\n")[:-1]:
            at, start = start, start + len(line) + 1
            try:
                rec = parse_line(line)
            except RuntimeError_:
                continue  # a torn line (conmon killed mid-write)
            # conmon cuts lines where its reads end; Docker's drivers keep a line whole up to 16 KiB.
            if held_lines:
                held = held_lines.pop(rec.stream, None)
                if held is not None:
                    at, rec = held[0], LogRecord(ts=held[1].ts, stream=rec.stream, data=held[1].data + rec.data,
                                                 partial=rec.partial)
            if rec.partial and len(rec.data) < MAX_ENTRY:
                held_lines[rec.stream] = (at, rec)
                continue
            if self._forward is not None:
                self._forward.put(rec)
            entries.append(encode(rec))

    def flush(self) -> None:
        """The run is over: a line it left unfinished is written as the partial entry it is."""
        held = sorted(self._held.values(), key=lambda h: h[0])
        self._held.clear()
        if held:
            for _, rec in held:
                if self._forward is not None:
                    self._forward.put(rec)
            if self._out is not None:
                self._out.write([self._fmt.encode(rec) for _, rec in held])
            self._save()

    def _open(self, resume: bool = True) -> bool:
        try:
            f = open(self._capture, "rb")
        except FileNotFoundError:
            return False
        self._f, self._offset, self._pending = f, 0, b""
        if resume:
            self._held = {}
            saved = self._load()
            st = os.fstat(f.fileno())
            if saved is not None and saved[0] == st.st_ino and saved[1] <= st.st_size:
                self._offset = saved[1]
                f.seek(self._offset)
        return True

    def _rotated(self) -> bool:
        assert self._f is not None
        try:
            return os.stat(self._capture).st_ino != os.fstat(self._f.fileno()).st_ino
        except FileNotFoundError:
            return False

    def _load(self) -> tuple[int, int] | None:
        try:
            ino, offset = self._state.read_text().split()
            return int(ino), int(offset)
        except (FileNotFoundError, ValueError):
            return None

    def _save(self) -> None:
        if self._f is None:
            return
        ino = os.fstat(self._f.fileno()).st_ino
        tmp = self._state.with_name(self._state.name + ".tmp")
        # A held line is shipped again from its start if the engine stops before finishing it.
        resume_at = min([self._offset - len(self._pending), *(start for start, _ in self._held.values())])
        tmp.write_text(f"{ino} {resume_at}\n")
        os.replace(tmp, self._state)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if self._forward is not None:
            self._forward.close()
        if self._out is not None:
            with contextlib.suppress(ValueError):
                self._out.close()
