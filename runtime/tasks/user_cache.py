"""Users resolved per image chain, so that a container of an image already seen is created without a rootfs mount.

A container's writable snapshot, fresh from prepare(), holds exactly the files of its parent chain, and a
committed chain never changes: a user resolved against /etc/passwd and /etc/group of one container of a
chain holds for every later one. Only successes are kept; an unknown user is looked up (and refused) again.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict

from runtime.tasks.users import ExecUser

SIZE = 256

Key = tuple[str | None, str, tuple[str, ...]]


def key(chain_id: str | None, user: str | None, additional_gids: list[str | int] | None) -> Key:
    return chain_id, user or "", tuple(str(g) for g in additional_gids or ())


class ResolvedUsers:
    def __init__(self, size: int = SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[Key, ExecUser] = OrderedDict()

    def get(self, k: Key) -> ExecUser | None:
        found = self._entries.get(k)
        if found is None:
            return None
        self._entries.move_to_end(k)
        return _copy(found)

    def put(self, k: Key, user: ExecUser) -> None:
        self._entries[k] = _copy(user)
        self._entries.move_to_end(k)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


def _copy(user: ExecUser) -> ExecUser:
    # Specs keep the gid list they are given; no two specs may share one.
    return dataclasses.replace(user, additional_gids=list(user.additional_gids))
