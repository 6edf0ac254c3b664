"""W3C trace context for ``/v1/do`` calls, and OpenTelemetry spans when tracing is on.

- Always: a call's ``traceparent``/``tracestate`` headers are taken in and passed on, to the HTTP
  calls a command makes (the HTTP connector, :func:`spiff_connector_sdk.tracing.trace_headers`) and
  to a Connector's workload with a forwarded call, so a trace crosses the proxy even when it
  records nothing itself. A call without them costs nothing here.
- With ``CONNECTOR_PROXY_TRACING=true``: each call is a SERVER span (``POST /v1/do/<id>``, with the
  command, outcome, error code and status as attributes), the parent of what it passes on, exported
  over OTLP/HTTP in batches. The exporter is configured by OpenTelemetry's own variables
  (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``,
  ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``...); the SDK is imported only then.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import Token
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from connector_proxy.outcome import Outcome

TRACE_HEADERS = (b"traceparent", b"tracestate")
SERVICE_NAME = "connector-proxy"
ROUTE = "/v1/do/{connector}/{command}"


def incoming(headers: Iterable[tuple[bytes, bytes]]) -> Context | None:
    """The trace context of a request's headers (ASGI's raw pairs), or None without a ``traceparent``."""
    carrier: dict[str, str] = {}
    for name, value in headers:
        if name in TRACE_HEADERS:
            carrier[name.decode()] = bytes(value).decode("latin-1")
    if "traceparent" not in carrier:
        return None
    return propagate.extract(carrier)


def outgoing(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with the current trace context's ``traceparent``/``tracestate`` when there is one."""
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(headers)
    return headers


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

    def start(self, command_id: str, parent: Context | None) -> tuple[Span | None, Token[Context] | None]:
        """Enter a call: ``(span or None, token to pass to :meth:`end`)``; nothing at all when
        tracing is off and the call carries no trace context."""
        if self.tracer is None:
            if parent is None:
                return None, None
            return None, otel_context.attach(parent)
        span = self.tracer.start_span(
            f"POST /v1/do/{command_id}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.route": ROUTE, "connector_proxy.command": command_id},
            record_exception=False,
            set_status_on_exception=False,
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    def end(self, span: Span | None, token: Token[Context] | None, outcome: Outcome) -> None:
        if token is not None:
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
