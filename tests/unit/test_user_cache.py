"""The per-chain cache of resolved users: what it keeps, what it hands out, and what it forgets."""
from __future__ import annotations

from runtime.tasks.user_cache import ResolvedUsers, key
from runtime.tasks.users import ExecUser


def test_a_user_is_kept_per_chain_user_and_groups() -> None:
    cache = ResolvedUsers()
    cache.put(key("sha256:a", "app", ["audio"]), ExecUser(uid=900, gid=900, additional_gids=[29], home="/app"))
    assert cache.get(key("sha256:a", "app", ["audio"])) == ExecUser(900, 900, [29], "/app")
    assert cache.get(key("sha256:b", "app", ["audio"])) is None
    assert cache.get(key("sha256:a", "app", [])) is None
    assert cache.get(key("sha256:a", None, ["audio"])) is None
    # "" and no user are the same request (root); group names and numbers are told apart as given.
    cache.put(key(None, None, None), ExecUser(0, 0))
    assert cache.get(key(None, "", [])) == ExecUser(0, 0)
    assert cache.get(key("sha256:a", "app", [29])) is None


def test_each_caller_gets_its_own_gid_list() -> None:
    cache = ResolvedUsers()
    k = key("sha256:a", "", None)
    cache.put(k, ExecUser(0, 0, [1, 2]))
    first = cache.get(k)
    assert first is not None
    first.additional_gids.append(99)
    assert cache.get(k) == ExecUser(0, 0, [1, 2])


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = ResolvedUsers(size=2)
    for chain in ("a", "b"):
        cache.put(key(chain, "", None), ExecUser(0, 0))
    assert cache.get(key("a", "", None)) is not None
    cache.put(key("c", "", None), ExecUser(0, 0))
    assert cache.get(key("b", "", None)) is None
    assert cache.get(key("a", "", None)) is not None
    assert cache.get(key("c", "", None)) is not None
