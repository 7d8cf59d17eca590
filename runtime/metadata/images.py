"""Image records: a name in a namespace pointing at a root descriptor."""
from __future__ import annotations

import json
import sqlite3
import time

from pydantic import BaseModel

from runtime.errors import AlreadyExists, InvalidArgument, NotFound
from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.metadata import namespaces
from runtime.metadata.db import Database
from runtime.namespaces import require_namespace
from runtime.oci import Descriptor, validate_digest
from runtime.reference import parse as parse_reference


class Image(BaseModel):
    name: str
    target: Descriptor
    labels: dict[str, str] = {}
    created: float = 0.0
    updated: float = 0.0


def _row(r: sqlite3.Row) -> Image:
    return Image(
        name=r["name"],
        target=Descriptor(mediaType=r["media_type"], digest=r["digest"], size=r["size"]),
        labels=json.loads(r["labels"]),
        created=r["created"],
        updated=r["updated"],
    )


class ImageStore:
    def __init__(self, db: Database, events: Exchange) -> None:
        self._db = db
        self._events = events

    async def list(self) -> list[Image]:
        ns = require_namespace()

        def tx(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            namespaces.require_exists(conn, ns)
            return conn.execute("SELECT * FROM images WHERE namespace=? ORDER BY name", (ns,)).fetchall()

        return [_row(r) for r in await self._db.run(tx)]

    async def get(self, name: str) -> Image:
        ns = require_namespace()
        row = await self._db.run(
            lambda c: c.execute("SELECT * FROM images WHERE namespace=? AND name=?", (ns, name)).fetchone()
        )
        if row is None:
            raise NotFound(f"image {name} not found")
        return _row(row)

    async def find(self, name: str) -> Image:
        """By its stored name, or by the normalised form of a short one (busybox → docker.io/library/busybox:latest).

        What clients that name an image to run (a container's create, its config for the process) look it up
        by, so `pyctr run busybox` finds what `pyctr images pull busybox` stored; the records' own routes
        keep to exact names.
        """
        try:
            return await self.get(name)
        except NotFound:
            normalised = str(parse_reference(name))
            if normalised == name:
                raise
            return await self.get(normalised)

    async def put(self, image: Image, *, replace: bool = True) -> Image:
        """Create, or point an existing name at a new target (a re-pull or re-tag)."""
        ns = require_namespace()
        if not image.name or len(image.name) > 512:
            raise InvalidArgument("image name must be 1 to 512 characters")
        validate_digest(image.target.digest)
        now = time.time()

        def tx(conn: sqlite3.Connection) -> str:
            namespaces.ensure(conn, ns)
            old = conn.execute(
                "SELECT created FROM images WHERE namespace=? AND name=?", (ns, image.name)
            ).fetchone()
            if old is not None and not replace:
                raise AlreadyExists(f"image {image.name} already exists")
            created = old["created"] if old else now
            conn.execute(
                "INSERT OR REPLACE INTO images (namespace, name, media_type, digest, size, labels, created, updated)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (ns, image.name, image.target.mediaType, image.target.digest, image.target.size,
                 json.dumps(image.labels), created, now),
            )
            image.created, image.updated = created, now
            return topics.IMAGE_UPDATE if old else topics.IMAGE_CREATE

        topic = await self._db.run(tx)
        self._events.publish(ns, topic, {"name": image.name, "target": image.target.wire(), "labels": image.labels})
        return image

    async def delete(self, name: str) -> None:
        ns = require_namespace()

        def tx(conn: sqlite3.Connection) -> None:
            cur = conn.execute("DELETE FROM images WHERE namespace=? AND name=?", (ns, name))
            if cur.rowcount == 0:
                raise NotFound(f"image {name} not found")

        await self._db.run(tx)
        self._events.publish(ns, topics.IMAGE_DELETE, {"name": name})
