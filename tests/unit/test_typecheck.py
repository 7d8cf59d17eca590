"""The product's code stays clean under mypy --strict.

What is checked, and how strictly, is pyproject.toml's [tool.mypy]: runtime, engine and both CLIs.
mypy's incremental cache (.mypy_cache/, git-ignored) keeps a rerun to a few seconds.
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
