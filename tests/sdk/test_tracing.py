"""``trace_headers()``: what a command passes on of the call's trace context."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from spiff_connector_sdk.tracing import carry, release, trace_headers

CARRIED = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01", "tracestate": "vendor=1"}


def test_outside_a_traced_call_there_is_nothing_to_pass_on() -> None:
    assert trace_headers() == {}


def test_carried_headers_are_passed_on_until_released() -> None:
    token = carry(CARRIED)
    try:
        passed_on = trace_headers()
        passed_on["traceparent"] = "changed by the command"
        assert trace_headers() == CARRIED  # each request gets its own copy
    finally:
        release(token)
    assert trace_headers() == {}


def test_without_carried_headers_the_opentelemetry_context_is_passed_on() -> None:
    span = NonRecordingSpan(SpanContext(int("c" * 32, 16), int("d" * 16, 16), True, TraceFlags(1)))
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        assert trace_headers() == {"traceparent": f"00-{'c' * 32}-{'d' * 16}-01"}
    finally:
        otel_context.detach(token)
