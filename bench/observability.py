"""What observability costs one ``/v1/do`` call, measured in process (microseconds per call).

- ``log_us``: the call's ``command answered`` line, JSON-formatted and written to a file;
- ``metrics_us``: its metrics (in-flight up and down, the counters and the latency histogram);
- ``propagation_us``: taking a ``traceparent`` in and passing it on (tracing off);
- ``span_us``: with ``CONNECTOR_PROXY_TRACING=true``, the same propagation and the call's span
  started, ended and handed to the batch exporter (whose export, to a sink here, runs in its own
  thread): the whole of what tracing costs a call.

``bench/run.py`` sets them beside the ``/v1/do`` row's time per call (1 / its throughput at 4
connections, one worker: the worker's whole time per call), as fractions of it.

    python bench/observability.py
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _per_call_us(work: Callable[[], object], count: int) -> float:
    for _ in range(min(count, 1000)):
        work()
    started = time.perf_counter()
    for _ in range(count):
        work()
    return (time.perf_counter() - started) / count * 1e6


def measure(count: int = 20000) -> dict[str, float]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from connector_proxy.call_context import CallContext
    from connector_proxy.dispatch import record_log
    from connector_proxy.logging_setup import JsonFormatter, lean_records
    from connector_proxy.metrics import ProxyMetrics
    from connector_proxy.outcome import Outcome
    from connector_proxy.tracing import Tracing, incoming
    from spiff_connector_sdk.tracing import trace_headers

    class Sink(SpanExporter):
        def export(self, spans: Sequence[object]) -> SpanExportResult:  # type: ignore[override]
            return SpanExportResult.SUCCESS

    outcome = Outcome(200, b"{}")
    call = CallContext("5f0c3e9e2d0b4c41a1f6f3c2b0a9d8e7", 42, "orders/checkout", "Activity_charge")
    lean_records()  # what configure_logging does in a serving proxy
    with tempfile.TemporaryDirectory() as tmp:
        handler = logging.FileHandler(os.path.join(tmp, "calls.log"))
        handler.setFormatter(JsonFormatter())
        channel = logging.getLogger("connector_proxy.do")
        channel.addHandler(handler)
        channel.setLevel(logging.INFO)
        channel.propagate = False
        try:
            log_us = _per_call_us(lambda: record_log("http/GetRequestV2", outcome, call, 0.00123), count)
        finally:
            channel.removeHandler(handler)
            handler.close()
    metrics = ProxyMetrics()

    def observed() -> None:
        metrics.started("http/GetRequestV2")
        metrics.observe("http/GetRequestV2", 200, "success", None, 0.00123)

    headers = [(b"content-type", b"application/json"), (b"traceparent", TRACEPARENT)]
    off = Tracing()

    def propagated() -> None:
        span, token = off.start("http/GetRequestV2", incoming(headers))
        trace_headers()
        off.end(span, token, outcome)

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Sink()))
    on = Tracing(provider)

    def spanned() -> None:
        span, token = on.start("http/GetRequestV2", incoming(headers))
        trace_headers()
        on.end(span, token, outcome)

    try:
        return {
            "log_us": log_us,
            "metrics_us": _per_call_us(observed, count),
            "propagation_us": _per_call_us(propagated, count),
            "span_us": _per_call_us(spanned, count),
        }
    finally:
        provider.shutdown()


def main() -> int:
    sys.path.insert(0, str(ROOT / "proxy"))
    print(json.dumps(measure(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
