"""The action of an exec's events, in dockerd's words: shared by docker exec and the healthchecks' probes."""
from __future__ import annotations


def exec_action(stage: str, cmd: list[str]) -> str:
    """An exec's event action as dockerd writes it: the program, a space, the arguments ("exec_start: true ")."""
    return f"exec_{stage}: {cmd[0]} {' '.join(cmd[1:])}" if cmd else f"exec_{stage}: "
