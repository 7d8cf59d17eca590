"""runtime/tasks/oom_watch.py on cgroup v2's path: inotify on memory.events, a /tasks/oom for each rise of its
`oom_kill` counter, none for other changes, and none again at the exit for a kill already told. A plain file
stands in for memory.events (the kernel's changes to it reach inotify as writes do)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from runtime.tasks import cgroups, oom_watch
from runtime.tasks.state import TaskState


class Published:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, namespace: str, topic: str, event: dict[str, Any]) -> None:
        self.events.append((namespace, topic, event))


def test_v2_kills_are_told_once_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "memory.events"
    counter.write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
    monkeypatch.setattr(cgroups, "oom_counter", lambda path: (str(counter), True))
    published = Published()
    task = TaskState(id="t1", namespace="ns", runtime="runc", cgroups_path="/pyengine/t1")

    async def scenario() -> None:
        watch = oom_watch.OomWatch(published)  # type: ignore[arg-type]
        await watch.watch(task)
        counter.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")  # an OOM begins: nothing killed yet
        await asyncio.sleep(0.05)
        assert published.events == []
        counter.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
        await asyncio.sleep(0.05)
        assert published.events == [("ns", "/tasks/oom", {"container_id": "t1"})]
        await watch.settle(task)  # the exit it caused: told already
        assert len(published.events) == 1 and task.oom_killed
        watch.close()

    asyncio.run(scenario())
