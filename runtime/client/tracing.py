"""Trace context on the runtime API: each request carries the caller's span as a W3C `traceparent`.

Inside a traced engine request, every call to pyruntimed gets a CLIENT span of its own and sends its
context, so pyruntimed's spans (and its runc/conmon steps) join the engine's trace. Outside one (the
event monitor, background work), nothing is added: background loops make no traces of their own.
The daemons' tracing setup (runtime.telemetry) is re-exported here for the engine.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from runtime.telemetry import enabled, endpoint_from, setup, shutdown

__all__ = ["enabled", "endpoint_from", "setup", "shutdown", "client_span"]

_tracer = trace.get_tracer("runtime.client")


@contextlib.contextmanager
def client_span(method: str, path: str, headers: dict[str, str]) -> Iterator[None]:
    """A CLIENT span around one runtime API call, injected into `headers`; nothing outside a trace."""
    if not trace.get_current_span().get_span_context().is_valid:
        yield
        return
    # Paths carry ids: the name stays low-cardinality, the path is an attribute.
    with _tracer.start_as_current_span(f"pyruntimed {method}", kind=SpanKind.CLIENT,
                                       attributes={"http.request.method": method, "url.path": path}):
        propagate.inject(headers)
        yield
