"""W3C trace context for ``/v1/do`` calls, and OpenTelemetry spans when tracing is on.

- Always: a call's ``traceparent``/``tracestate`` headers are taken in and passed on, to the HTTP
  calls a command makes (the HTTP connector, :func:`spiff_connector_sdk.tracing.trace_headers`) and
  to a Connector's workload with a forwarded call, so a trace crosses the proxy even when it
  records nothing itself. A call without them costs nothing here. :func:`incoming` validates them
  by W3C Trace Context's rules, as OpenTelemetry's propagator does; with tracing off they are then
  passed on as they came (:func:`spiff_connector_sdk.tracing.carry`), without building the span
  context that nothing would record: about 2 to 3 µs a call instead of 7.
- With ``CONNECTOR_PROXY_TRACING=true``: each call is a SERVER span (``POST /v1/do/<id>``, with the
  command, outcome, error code and status as attributes), the parent of what it passes on, exported
  over OTLP/HTTP in batches. The exporter is configured by OpenTelemetry's own variables
  (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``,
  ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``...); the SDK is imported only then.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from spiff_connector_sdk.tracing import carry, release

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider

    from connector_proxy.outcome import Outcome

SERVICE_NAME = "connector-proxy"
ROUTE = "/v1/do/{connector}/{command}"
# W3C Trace Context, level 1 (version-traceid-parentid-flags; a later version may append fields),
# with the limits OpenTelemetry's propagator applies.
_TRACEPARENT = re.compile(r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)")
_TRACEPARENT_MAX = 512
_TRACESTATE_MAX = 8192
_NO_TRACE = "0" * 32
_NO_SPAN = "0" * 16

TraceHeaders = dict[str, str]


def incoming(headers: Iterable[tuple[bytes, bytes]]) -> TraceHeaders | None:
    """The trace context of a request's headers (ASGI's raw pairs) as it goes on, or None without
    a valid ``traceparent``: ``traceparent`` in version 00's form, and ``tracestate`` when it is valid
    (several ``tracestate`` fields are one list, RFC 9110 section 5.3)."""
    parent: str | None = None
    states: list[str] = []
    for name, value in headers:
        if name == b"traceparent":
            parent = bytes(value).decode("latin-1")
        elif name == b"tracestate":
            states.append(bytes(value).decode("latin-1"))
    if parent is None or len(parent) > _TRACEPARENT_MAX:
        return None
    match = _TRACEPARENT.fullmatch(parent)
    if match is None:
        return None
    version, trace_id, span_id, flags, more = match.groups()
    if trace_id == _NO_TRACE or span_id == _NO_SPAN or version == "ff" or (version == "00" and more):
        return None
    carried = {"traceparent": f"00-{trace_id}-{span_id}-{flags}"}
    if states and sum(map(len, states)) + len(states) - 1 <= _TRACESTATE_MAX:
        state = TraceState.from_header(states)
        if state:
            carried["tracestate"] = state.to_header()
    return carried


def parent_context(carried: TraceHeaders) -> Context:
    """The OpenTelemetry context of :func:`incoming`'s headers, the caller's span as a remote parent:
    what OpenTelemetry's W3C propagator extracts from them, without parsing the traceparent again."""
    parent = carried["traceparent"]  # 00-<trace id>-<span id>-<flags>, as incoming() wrote it
    state = carried.get("tracestate")
    span_context = SpanContext(
        trace_id=int(parent[3:35], 16),
        span_id=int(parent[36:52], 16),
        is_remote=True,
        trace_flags=TraceFlags(int(parent[53:55], 16)),
        trace_state=None if state is None else TraceState.from_header([state]),
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context))


class Tracing:
    """One app's tracing: spans when ``provider`` is set, else propagation only."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("connector_proxy") if provider is not None else None

    @classmethod
    def configured(cls, enabled: bool) -> Tracing:
        if not enabled:
            return cls()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))  # OTEL_* override it
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    def start(self, command_id: str, carried: TraceHeaders | None) -> tuple[Span | None, Token[Any] | None]:
        """Enter a call: ``(span or None, token to pass to :meth:`end`)``; nothing at all when
        tracing is off and the call carries no trace context."""
        if self.tracer is None:
            return None, None if carried is None else carry(carried)
        parent = None if carried is None else parent_context(carried)
        span = self.tracer.start_span(
            f"POST /v1/do/{command_id}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.route": ROUTE, "connector_proxy.command": command_id},
            record_exception=False,
            set_status_on_exception=False,
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    def end(self, span: Span | None, token: Token[Any] | None, outcome: Outcome) -> None:
        if token is not None:
            if self.tracer is None:
                release(token)
            else:
                otel_context.detach(token)
        if span is None:
            return
        if outcome.error_code is None:
            span.set_attributes({"http.response.status_code": outcome.status, "connector_proxy.outcome": outcome.kind})
        else:
            span.set_attributes(
                {
                    "http.response.status_code": outcome.status,
                    "connector_proxy.outcome": outcome.kind,
                    "connector_proxy.error_code": outcome.error_code,
                }
            )
            span.set_status(Status(StatusCode.ERROR, outcome.error_code))
        span.end()

    def shutdown(self) -> None:
        """Export what is buffered (at the app's shutdown)."""
        if self.provider is not None:
            self.provider.shutdown()
