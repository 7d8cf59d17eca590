"""Schemathesis against pyruntimed's own OpenAPI document: no request gets a 5xx or hangs.

The runtime listens on a Unix socket only; a small loopback relay gives `requests` (which schemathesis
drives) a TCP address for it.
"""
from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from runtime.api.app import build
from tests.fixtures.daemons import RuntimeDaemon

TIMEOUT = 20
# Streams that only end when the client goes (events) and what reaches out to registries (pull, push,
# describe, search, login: an unreachable registry is rightly a 503) are left out.
schema = schemathesis.openapi.from_dict(build(None).openapi()).exclude(
    name_regex=r"^GET /v1/events$|^POST /v1/images/(pull|push|describe|search)$|^POST /v1/registry/login$|/wait$")


class _Relay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        super().__init__(("127.0.0.1", 0), _Pipe)


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.server.unix_path)  # type: ignore[attr-defined]

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        back.start()
        pump(self.request, upstream)
        back.join(TIMEOUT)
        upstream.close()


@pytest.fixture(scope="module")
def runtime_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = RuntimeDaemon(str(tmp_path_factory.mktemp("rts")))
    d.start()
    relay = _Relay(d.address)
    thread = threading.Thread(target=relay.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{relay.server_address[1]}"
    finally:
        relay.shutdown()
        relay.server_close()
        d.cleanup()


@schema.parametrize()
@hypothesis.settings(max_examples=15, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_runtime_api_has_no_server_errors(case: schemathesis.Case, runtime_url: str) -> None:
    case.call_and_validate(base_url=runtime_url, checks=[not_a_server_error], timeout=TIMEOUT)
