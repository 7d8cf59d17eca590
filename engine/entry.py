"""The pyengined command: aiohttp is imported first, with its import-time TLS contexts reading the system's
CA certificates on demand (runtime/tls_roots.py), then the daemon runs."""
from __future__ import annotations

from runtime.tls_roots import read_on_demand


def main() -> None:
    with read_on_demand():
        import aiohttp  # noqa: F401
    from engine.daemon import main as run

    run()
