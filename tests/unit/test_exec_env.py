"""An exec's environment in dockerd's order (engine/containers/exec_env.py)."""
from __future__ import annotations

from engine.containers.exec_env import DEFAULT_PATH, exec_environment, replace_or_append


def test_order_of_defaults_links_container_and_exec() -> None:
    config = {"Hostname": "h1", "Env": ["PATH=/bin", "X=1", "HOME=/h"]}
    assert exec_environment(config, True, ["DB_NAME=/c/db"], ["A=2", "X=3"]) == [
        "PATH=/bin", "HOSTNAME=h1", "TERM=xterm", "DB_NAME=/c/db", "X=3", "HOME=/h", "A=2"]
    assert exec_environment({"Hostname": "h1"}, False, [], []) == [f"PATH={DEFAULT_PATH}", "HOSTNAME=h1"]


def test_the_container_or_exec_may_set_or_unset_any_of_them() -> None:
    assert exec_environment({"Env": ["TERM=vt100"]}, True, [], ["HOSTNAME"])[1:] == ["TERM=vt100"]
    assert replace_or_append(["A=1", "B=2"], ["A", "C=3", "B=4"]) == ["B=4", "C=3"]
