"""What a started engine has not imported: the subsystems it builds on first use (engine/lazy.py) and
prometheus_client, loaded by the first scrape. Their code is most of what an idle pyengined would otherwise
carry beyond what it serves with (issue 10 holds the idle RSS of the engine and its runtime to dockerd's)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NOT_AT_START = ("engine.builder.service", "engine.builder.context", "engine.builder.dockerfile",
                "engine.builder.run_step", "engine.builder.copy_files", "engine.images.commit",
                "engine.images.importer", "engine.metrics.exposition", "prometheus_client")


def test_a_wired_engine_has_not_loaded_what_it_builds_on_first_use(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from engine import config
        from engine.api.app import build
        from engine.backend import Backend
        from engine.daemon import ROUTERS
        from runtime.client import Client

        root = Path({str(tmp_path)!r})
        (root / "data").mkdir(); (root / "exec").mkdir()
        cfg = config.load(None, {{"data_root": str(root / "data"), "exec_root": str(root / "exec")}})
        backend = Backend.build(cfg, Client(str(root / "runtime.sock"), "pyengine"))
        backend.metrics.install(build(backend, ROUTERS))
        print(" ".join(sorted(m for m in sys.modules if m.startswith({NOT_AT_START!r}))))
        backend.builder.get(), backend.contexts.get(), backend.committer.get(), backend.importer.get()
        print(" ".join(sorted(m for m in sys.modules if m.startswith({NOT_AT_START[:-2]!r}))))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    at_start, after_use = out.stdout.split("\n")[:2]
    assert at_start == ""
    # Built on first use, they load what they need.
    assert set(after_use.split()) >= set(NOT_AT_START[:-2])
