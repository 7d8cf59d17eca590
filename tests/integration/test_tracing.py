"""Traces (issue 14, acceptance 4): one `docker run` start is one trace across pyengined and pyruntimed.

Both daemons export over OTLP/HTTP to a collector stub in this process (the standard
OTEL_EXPORTER_OTLP_ENDPOINT variable, as an operator would set it); the stub decodes the protobuf
requests with the OTLP's own message types.
"""
from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from runtime.telemetry import endpoint_from
from tests.fixtures.daemons import EngineDaemon, mirrored_engine


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Collector:
    """An OTLP/HTTP traces receiver keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                collector.add(req)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, req: ExportTraceServiceRequest) -> None:
        for rs in req.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    attrs = {a.key: a.value.string_value or a.value.int_value for a in s.attributes}
                    with self.lock:
                        self.spans.append(Span(service, s.name, s.trace_id.hex(), s.span_id.hex(),
                                               s.parent_span_id.hex(), attrs))

    def wait_for(self, check: Any, timeout: float = 30) -> list[Span]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                spans = list(self.spans)
            if check(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry, collector: Collector) -> Iterator[EngineDaemon]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        env.setenv("NO_PROXY", "127.0.0.1")
        with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
            yield e


def _start_trace(spans: list[Span]) -> list[Span]:
    """Every span of the trace of the engine's `start` request, once the runtime's runc start is in it."""
    for root in spans:
        if root.service == "pyengined" and root.name.startswith("pyengined POST") and root.name.endswith("/start"):
            trace = [s for s in spans if s.trace_id == root.trace_id]
            if any(s.name == "runc start" for s in trace):
                return trace
    return []


def test_a_docker_run_is_one_trace_across_both_daemons(engine: EngineDaemon, collector: Collector) -> None:
    out = subprocess.run(["docker", "run", "--rm", "busybox", "true"], env=engine.env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    trace = _start_trace(collector.wait_for(lambda spans: bool(_start_trace(spans))))
    assert trace, f"no start trace among {[(s.service, s.name) for s in collector.spans]}"
    by_id = {s.span_id: s for s in trace}
    names = {(s.service, s.name) for s in trace}
    assert {("pyruntimed", "conmon spawn"), ("pyruntimed", "runc create (under conmon)"),
            ("pyruntimed", "runc start")} <= names, names
    # The boundary: the runtime's request spans hang off the engine's CLIENT span for each call.
    crossings = [s for s in trace if s.service == "pyruntimed" and s.parent_id in by_id
                 and by_id[s.parent_id].service == "pyengined"]
    assert {s.name for s in crossings} == {"POST /v1/tasks", "POST /v1/tasks/{task_id}/start"}, crossings
    assert all(by_id[s.parent_id].name == "pyruntimed POST" for s in crossings)
    # Every span but the engine's request span hangs off another span of the same trace.
    roots = [s for s in trace if s.parent_id not in by_id]
    assert [(r.service, r.name.split(" ")[1]) for r in roots] == [("pyengined", "POST")]
    # runc's steps sit inside the runtime's handling of the engine's calls, not beside them.
    for step in (s for s in trace if s.name.startswith(("runc ", "conmon "))):
        ancestor = by_id[step.parent_id]
        while ancestor.service == "pyruntimed" and ancestor not in crossings:
            ancestor = by_id[ancestor.parent_id]
        assert ancestor in crossings, step


def test_tracing_is_off_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    assert endpoint_from(None) is None
    assert endpoint_from("http://collector:4318") == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318/")
    assert endpoint_from(None) == "http://otel:4318/v1/traces"
    assert endpoint_from("http://mine:4318/v1/traces") == "http://mine:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom")
    assert endpoint_from(None) == "http://traces:9999/custom"


def test_an_unconfigured_engine_sends_no_trace_context(tmp_path: Path) -> None:
    """The runtime client adds no header outside a traced request (no provider: no recording span)."""
    from runtime.client.tracing import client_span
    headers: dict[str, str] = {}
    with client_span("GET", "/version", headers):
        pass
    assert headers == {}
