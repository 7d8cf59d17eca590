"""CLI start-up benchmark: wall and CPU time of `pyengine version` (and a few other commands), `docker version`
and `python -c pass`, each run N times in turn against a stand-in daemon on a unix socket that answers
`GET /_ping`, `/version` and `/containers/json` at once, so that only the CLI is measured.

Bytecode is cached first (one untimed run of each), as an installed package has it: this repository's test
environment sets PYTHONDONTWRITEBYTECODE, which would make every run compile the CLI's modules again.

    .venv/bin/python -m benchmarks.cli_startup [--runs 20] [--docker]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socketserver
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

_VERSION = {"Platform": {"Name": "stand-in"}, "Components": [], "Version": "0", "ApiVersion": "1.50",
            "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"}


class _Daemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline().split()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        path = line[1].decode().split("?")[0] if len(line) > 1 else "/"
        if line[:1] == [b"HEAD"]:
            body = b""
        elif path == "/_ping":
            body = b"OK"
        elif path.endswith("/version"):
            body = json.dumps(_VERSION).encode()
        else:
            body = b"[]"
        self.wfile.write(b"HTTP/1.1 200 OK\r\nAPI-Version: 1.50\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run: (wall ms, CPU ms of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    os.waitpid(pid, 0)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--docker", action="store_true", help="also time `docker version` (needs the docker CLI)")
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "d.sock")
        server = _Daemon(sock, _Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYENGINE_HOST=f"unix://{sock}", DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=tmp)
        cases = {"python -c pass": [sys.executable, "-c", "pass"],
                 "pyengine version": [str(bindir / "pyengine"), "version"],
                 "pyengine ps": [str(bindir / "pyengine"), "ps"],
                 "pyengine --help": [str(bindir / "pyengine"), "--help"]}
        docker = shutil.which("docker")
        if args.docker and docker:
            cases["docker version"] = [docker, "version"]
        for argv in cases.values():
            _run(argv, env)  # caches bytecode, warms the page cache
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                results[name].append(_run(argv, env))
        server.shutdown()
        server.server_close()
    print(f"| command ({args.runs} runs) | wall, median | wall, best | CPU, median | CPU, best |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(f"| `{name}` | {statistics.median(walls):.0f} ms | {min(walls):.0f} ms "
              f"| {statistics.median(cpus):.0f} ms | {min(cpus):.0f} ms |")


if __name__ == "__main__":
    main()
