"""What process a RUN starts, given the stage's SHELL: the exec form as is, the shell form through the
shell, and heredocs as BuildKit runs them.

- `RUN <<EOF` alone: the body is the script. With a `#!` first line it is written to a read-only file
  `/dev/pipes/<name>` (mode 0755) and executed directly; otherwise the shell runs it (`sh -c BODY`).
  Either way `<<-` strips the body's leading tabs first.
- Any other command with heredocs (`RUN python3 <<EOF`, `RUN cat <<A 3<<B`): the command and its
  heredocs are put back together (the line, then each body and delimiter) and given to the shell,
  which handles the here-documents itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.builder.dockerfile.instructions import Run
from engine.builder.dockerfile.parser import parse_heredoc_marker

PIPES_DIR = "/dev/pipes"


@dataclass(frozen=True)
class RunFile:
    path: str
    content: str
    mode: int = 0o755


@dataclass(frozen=True)
class RunProcess:
    """The argv, and the files to mount read-only into the step's container before it runs."""

    args: list[str]
    files: tuple[RunFile, ...] = ()


def run_process(run: Run, shell: Sequence[str]) -> RunProcess:
    if isinstance(run.command, list):
        return RunProcess(list(run.command))
    if not run.heredocs:
        return RunProcess([*shell, run.command])
    words = run.command.split()
    if len(words) == 1 and len(run.heredocs) == 1 and parse_heredoc_marker(words[0]) is not None:
        doc = run.heredocs[0]
        if doc.body.startswith("#!"):
            path = f"{PIPES_DIR}/{doc.name}"
            return RunProcess([path], (RunFile(path, doc.body),))
        return RunProcess([*shell, doc.body])
    script = run.command + "".join(f"\n{doc.content}{doc.name}" for doc in run.heredocs)
    return RunProcess([*shell, script])
