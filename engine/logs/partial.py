"""Docker's partial messages, for the drivers that send them (fluentd, journald): a line past 16 KiB goes as
pieces sharing a random ID, numbered from 1, the last marked so; a line the run left unfinished goes as a piece
that is not the last, as dockerd's copier sends both."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from runtime.client.logs import LogRecord

MAX_PIECE = 16 * 1024


@dataclass(frozen=True)
class Meta:
    id: str
    ordinal: int
    last: bool


@dataclass(frozen=True)
class Piece:
    data: bytes  # without the line's newline
    meta: Meta | None  # None: a whole line


class Pieces:
    """Cuts a container's lines into pieces; keeps, per stream, the ID and count of a line being sent in parts
    (the shipper hands a long line over in parts of 16 KiB or more)."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[str, int]] = {}

    def of(self, rec: LogRecord) -> list[Piece]:
        data = rec.data.removesuffix(b"\n")
        cuts = [data[n:n + MAX_PIECE] for n in range(0, len(data), MAX_PIECE)] or [b""]
        if len(cuts) == 1 and not rec.partial and rec.stream not in self._open:
            return [Piece(data, None)]
        ident, ordinal = self._open.pop(rec.stream, (secrets.token_hex(32), 0))
        out = []
        for n, cut in enumerate(cuts, ordinal + 1):
            last = n == ordinal + len(cuts) and not rec.partial
            out.append(Piece(cut, Meta(ident, n, last)))
        # A part shorter than a piece is the run's unfinished last line (engine/logs/shipper.py), not continued.
        if rec.partial and len(data) >= MAX_PIECE:
            self._open[rec.stream] = (ident, ordinal + len(cuts))
        return out
