"""The trace context of the call a command is running for, for the HTTP requests it makes.

The proxy takes a call's W3C ``traceparent``/``tracestate`` in; a command passes them on to what it
calls with :func:`trace_headers`, so the trace continues upstream. With the proxy's tracing on, its
own span is their child and is what goes on (read from the OpenTelemetry context); with it off, the
caller's validated headers go on as they are (the proxy hands them over with :func:`carry`).
Outside a traced call it is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token

try:
    from opentelemetry import propagate, trace
except ImportError:  # the SDK itself depends on nothing
    propagate = None  # type: ignore[assignment]

_carried: ContextVar[Mapping[str, str] | None] = ContextVar("spiff_connector_sdk_trace_headers", default=None)


def trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) for an outgoing request, or ``{}``."""
    carried = _carried.get()
    if carried is not None:
        return dict(carried)
    if propagate is None or not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def carry(headers: Mapping[str, str]) -> Token[Mapping[str, str] | None]:
    """Have :func:`trace_headers` answer ``headers`` in the current context until :func:`release`:
    the proxy's way of passing a call's (validated) trace context on when it records no span."""
    return _carried.set(headers)


def release(token: Token[Mapping[str, str] | None]) -> None:
    """End what :func:`carry` started."""
    _carried.reset(token)
