"""The CRI plugin's in-memory view of its pods and containers: ids, unique names and id prefixes.

Built from the runtime's container records at start and kept in step by every create and remove;
names are reserved before anything is made, so two concurrent RunPodSandbox calls for the same pod
attempt cannot both proceed (kubelet retries a failed call with the same name).
"""
from __future__ import annotations

from typing import Generic, TypeVar

from runtime.errors import AlreadyExists, InvalidArgument, NotFound

T = TypeVar("T")


class Index(Generic[T]):
    def __init__(self, what: str) -> None:
        self._what = what
        self._items: dict[str, T] = {}
        self._names: dict[str, str] = {}  # name -> id

    def reserve(self, name: str, id: str) -> None:
        holder = self._names.get(name)
        if holder is not None and holder != id:
            raise AlreadyExists(f"{self._what} name {name!r} is reserved for {holder}")
        self._names[name] = id

    def release(self, name: str) -> None:
        self._names.pop(name, None)

    def add(self, id: str, item: T) -> None:
        self._items[id] = item

    def remove(self, id: str) -> None:
        self._items.pop(id, None)
        for name, holder in list(self._names.items()):
            if holder == id:
                del self._names[name]

    def get(self, id_or_prefix: str) -> T:
        """An exact id, or a prefix unique among the ids (crictl and kubelet users pass short ids)."""
        if not id_or_prefix:
            raise InvalidArgument(f"{self._what} id is empty")
        if id_or_prefix in self._items:
            return self._items[id_or_prefix]
        hits = [k for k in self._items if k.startswith(id_or_prefix)]
        if len(hits) > 1:
            raise InvalidArgument(f"{self._what} id prefix {id_or_prefix!r} is ambiguous")
        if not hits:
            raise NotFound(f"{self._what} {id_or_prefix!r} not found")
        return self._items[hits[0]]

    def find(self, id_or_prefix: str) -> T | None:
        try:
            return self.get(id_or_prefix)
        except NotFound:
            return None

    def values(self) -> list[T]:
        return list(self._items.values())
