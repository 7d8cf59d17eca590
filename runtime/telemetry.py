"""OpenTelemetry traces for both daemons: off unless an OTLP endpoint is configured.

Unconfigured, no tracer provider is installed: the API's no-op tracer makes every span a shared
non-recording object and the trace-context propagator injects nothing, so tracing costs a function call
per span. Configured (daemon.json `otel-exporter-otlp-endpoint`, the runtime's `otlp_endpoint`, or the
standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables), spans are
batched and sent over OTLP/HTTP (protobuf) from the SDK's own thread, never from the event loop; the
SDK and the exporter are imported only then. The SDK's other OTEL_* variables apply as usual
(OTEL_BSP_SCHEDULE_DELAY, OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_HEADERS...).

The engine reaches this module through runtime.client.tracing (the one door into the runtime package).
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace

log = logging.getLogger("runtime.telemetry")

_TRACES_PATH = "/v1/traces"
# Whichever daemon called setup() with an endpoint; shutdown() flushes it.
_provider: Any = None


def endpoint_from(configured: str | None) -> str | None:
    """The OTLP/HTTP traces URL: the configured base URL, else the standard variables, else None (off)."""
    if configured:
        return _traces_url(configured)
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]  # a signal's own URL is used as it is
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return _traces_url(os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"])
    return None


def _traces_url(base: str) -> str:
    return base if base.rstrip("/").endswith(_TRACES_PATH) else base.rstrip("/") + _TRACES_PATH


def setup(service: str, configured: str | None) -> str | None:
    """Install the exporting provider for this process if tracing is configured; the URL, or None."""
    global _provider
    url = endpoint_from(configured)
    if url is None or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing: exporting spans of %s to %s", service, url)
    return url


def enabled() -> bool:
    return _provider is not None


def shutdown() -> None:
    """Flush what is batched (called at the daemon's exit; blocks up to the exporter's timeout)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


@contextlib.contextmanager
def step(tracer_: trace.Tracer, name: str, **attributes: str | int) -> Iterator[trace.Span]:
    """A span for one step of the current request; no span (and no cost) outside a traced request."""
    if not trace.get_current_span().get_span_context().is_valid:
        yield trace.INVALID_SPAN
        return
    with tracer_.start_as_current_span(name, attributes=attributes) as span:
        yield span
