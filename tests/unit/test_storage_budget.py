"""daemon.json's storage keys, the budget's collection order and the removed-logs index, without daemons."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine import config
from engine.logs.retention import RemovedLogs
from engine.storage.budget import Candidate
from engine.storage.ledger import chain_ids
from engine.storage.settings import StorageBudget, parse_duration, parse_size


@pytest.mark.parametrize(("text", "size"), [("10GB", 10 * 1000**3), ("512MiB", 512 * 1024**2), ("1g", 1000**3),
                                            ("2.5kb", 2500), (4096, 4096), ("100", 100)])
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1GB", "0", 0, True, "10 XB", None])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("1h30m", 5400), ("90s", 90), ("250ms", 0.25),
                                               (30, 30), ("0s", 0)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "1d", "h", -5, "1h 30m", ""])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def load(tmp_path: Path, doc: dict[str, object]) -> config.Config:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(doc))
    return config.load(str(path), {})


def test_budget_keys(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"storage-budget": {"limit": "10GB", "high": 0.8, "low": 0.5, "interval": "30s"},
                          "removed-logs-retention": "2h"})
    assert cfg.storage_budget == StorageBudget(limit=10 * 1000**3, high=0.8, low=0.5, interval=30)
    assert (cfg.storage_budget.high_bytes, cfg.storage_budget.low_bytes) == (8 * 1000**3, 5 * 1000**3)
    assert cfg.removed_logs_retention == 7200
    defaults = load(tmp_path, {})
    assert (defaults.storage_budget, defaults.removed_logs_retention, defaults.removed_logs_inspect) == \
        (None, 3600, "auto-removed")


@pytest.mark.parametrize(("doc", "message"), [
    ({"storage-budget": {"limit": "10GB", "high": 0.5, "low": 0.7}}, "storage-budget: low (0.7) must be below high"),
    ({"storage-budget": {"limit": "lots"}}, "storage-budget.limit: 'lots' is not a size"),
    ({"storage-budget": {"high": 0.9}}, "storage-budget.limit: Field required"),
    ({"storage-budget": {"limit": "1GB", "high": 1.5}}, "storage-budget.high: 1.5 is not a fraction"),
    ({"storage-budget": {"limit": "1GB", "hgih": 0.5}}, "storage-budget.hgih: Extra inputs are not permitted"),
    ({"removed-logs-retention": "soon"}, "removed-logs-retention: 'soon' is not a duration"),
])
def test_bad_budget_keys_name_the_key(tmp_path: Path, doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as e:
        load(tmp_path, doc)
    assert str(e.value).startswith(message)


def test_collection_order_dangling_first_then_least_recently_used() -> None:
    cands = [Candidate(False, 30.0), Candidate(True, 50.0), Candidate(False, 10.0), Candidate(True, 20.0)]
    assert [(c.dangling, c.last_use) for c in sorted(cands, key=lambda c: c.order)] == \
        [(True, 20.0), (True, 50.0), (False, 10.0), (False, 30.0)]


def test_chain_ids_follow_the_image_spec() -> None:
    import hashlib
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]


def _keep(logs: RemovedLogs, tmp_path: Path, cid: str, name: str) -> None:
    src = tmp_path / "containers" / cid
    src.mkdir(parents=True)
    (src / f"{cid}-json.log").write_text('{"log":"x\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n')
    (src / f"{cid}-json.log.1").write_text('{"log":"w\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n')
    logs.keep(src, src / f"{cid}-json.log", {"id": cid, "name": name, "image": "busybox", "image_id": "sha256:1",
                                              "config": {}, "host_config": {}}, {"id": cid})


def test_removed_logs_index(tmp_path: Path) -> None:
    logs = RemovedLogs(tmp_path / "removed", 60)
    first, second = "1" * 64, "2" * 64
    _keep(logs, tmp_path, first, "web")
    time.sleep(0.01)
    _keep(logs, tmp_path, second, "web")
    assert logs.find("web") is not None and logs.find("web").id == second  # type: ignore[union-attr]
    assert logs.find("/web").id == second  # type: ignore[union-attr]
    assert logs.find(first[:12]).id == first  # type: ignore[union-attr]
    assert logs.find("") is None and logs.find("nope") is None
    assert logs.bytes() > 0
    assert sorted(p.name for p in (tmp_path / "removed" / first).iterdir()) == \
        [f"{first}-json.log", f"{first}-json.log.1", "removed.json"]
    assert not (tmp_path / "containers" / first / f"{first}-json.log.1").exists()
    again = RemovedLogs(tmp_path / "removed", 60)  # the index is rebuilt from disk
    assert again.find(first) is not None
    again.drop(first)
    assert again.find(first) is None and not (tmp_path / "removed" / first).exists()
    shorter = RemovedLogs(tmp_path / "removed", 0.001)  # a window shortened at restart applies to older logs
    time.sleep(0.01)
    assert shorter.find(second) is None


class _Ledger:
    """Usage as the sum of what is left: each image or cache entry holds `sizes[name]` bytes."""

    def __init__(self, images: list, sizes: dict[str, int]) -> None:
        import asyncio
        self.state = type("State", (), {"images": images})()
        self.sizes = sizes
        self.changed = asyncio.Event()

    async def total(self) -> int:
        return sum(self.sizes.values())

    async def image_state(self):  # type: ignore[no-untyped-def]
        return self.state

    def images_changed(self) -> None:
        self.changed.set()


def _image(image_id: str, name: str | None, updated: float):  # type: ignore[no-untyped-def]
    from engine.images.model import LocalImage, Record
    from runtime.client.reference import parse
    rec = Record(name=name or f"<none>@sha256:{image_id}", target={"digest": "sha256:" + image_id}, updated=updated,
                 ref=parse(name) if name else None)
    return LocalImage(id=image_id, config={}, manifest_digest="m" + image_id, layers=[], records=[rec])


def test_enforce_collects_lru_down_to_low_and_spares_used_images(tmp_path: Path) -> None:
    import asyncio

    from engine.events import EventBus
    from engine.storage.budget import Budget, LastUse

    images = [_image("old", "old:1", 10), _image("used", "used:1", 5), _image("dangling", None, 50),
              _image("new", "new:1", 40), _image("mid", "mid:1", 20)]
    sizes = {"old": 100, "used": 100, "dangling": 100, "new": 100, "mid": 100}
    ledger = _Ledger(images, sizes)
    gone: list[str] = []

    class Images:
        async def delete_unused(self, image) -> bool:  # type: ignore[no-untyped-def]
            gone.append(image.id)
            del sizes[image.id]
            ledger.state.images = [i for i in ledger.state.images if i.id != image.id]
            return True

    class Cache:
        async def entries(self) -> list:
            return []

    class Store:
        def images_in_use(self) -> set[str]:
            return {"used"}

    settings = StorageBudget(limit=500, high=0.9, low=0.5)
    budget = Budget(settings, ledger, Images(), Cache(), Store(), EventBus(),  # type: ignore[arg-type]
                    LastUse(tmp_path / "last-use.json"))
    budget.last_use.touch("old", 45)  # used lately: now newer than mid
    removed = asyncio.run(budget.enforce())
    assert gone == ["dangling", "mid", "new"]  # 500 -> 200 (<= 250): dangling first, then least recently used
    assert [r["reclaimed"] for r in removed] == [100, 100, 100]
    assert asyncio.run(budget.enforce()) == []  # under the high mark: nothing to do
    assert json.loads((tmp_path / "last-use.json").read_text()) == {"old": 45}
