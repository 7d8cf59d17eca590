"""The strictly typed modules stay clean under mypy.

What is checked, and how strictly, is pyproject.toml's [tool.mypy]: its `files` are the strict set
(the runtime client and the conmon stdio protocol it shares with the runtime). mypy's incremental
cache (.mypy_cache/, git-ignored) keeps a rerun well under a second.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_strict_set_type_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}{result.stderr}"
