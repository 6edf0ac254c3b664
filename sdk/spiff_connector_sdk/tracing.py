"""The trace context of the call a command is running for, for the HTTP requests it makes.

The proxy takes a call's W3C ``traceparent``/``tracestate`` in (and, with tracing on, makes its own
span their child); a command passes them on to what it calls with :func:`trace_headers`, so the
trace continues upstream. Without OpenTelemetry installed, or outside a traced call, it is empty.
"""

from __future__ import annotations

try:
    from opentelemetry import propagate, trace
except ImportError:  # the SDK itself depends on nothing
    propagate = None  # type: ignore[assignment]


def trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) for an outgoing request, or ``{}``."""
    if propagate is None or not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
