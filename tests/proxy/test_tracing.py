"""A call's W3C trace context goes on to the HTTP calls its command makes; with tracing on, each call
is a SERVER span exported over OTLP/HTTP, the parent of what it passes on. Real servers on 127.0.0.1:
the proxy, an upstream that echoes the headers it got, and an OTLP receiver decoding what it gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from connector_proxy.app import create_app
from connector_proxy.outcome import Outcome
from connector_proxy.settings import Settings
from connector_proxy.tracing import Tracing, incoming, parent_context
from proxytest.servers import serve_in_thread
from spiff_connector_sdk.tracing import trace_headers

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def upstream_app() -> FastAPI:
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {"headers": {k.lower(): v for k, v in request.headers.items()}}

    @app.get("/missing")
    async def missing() -> Response:
        return Response(status_code=404)

    return app


class Receiver:
    """An OTLP/HTTP traces endpoint keeping every span it was sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.app = FastAPI()

        @self.app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            message = ExportTraceServiceRequest()
            message.ParseFromString(await request.body())
            for resource in message.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
            return Response(status_code=200, media_type="application/x-protobuf")


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_in_thread(upstream_app()) as url:
        yield url


def _get(proxy: str, url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{proxy}/v1/do/http/GetRequestV2", json={"url": url}, headers=headers, timeout=30)


def _seen(answer: httpx.Response) -> dict[str, str]:
    seen: dict[str, str] = answer.json()["command_response"]["body"]["headers"]
    return seen


def test_without_tracing_the_trace_context_passes_through(upstream: str) -> None:
    with serve_in_thread(create_app(Settings(only_connectors=["http"]))) as proxy:
        traced = _get(proxy, f"{upstream}/echo", {"traceparent": TRACEPARENT, "tracestate": "vendor=1"})
        plain = _get(proxy, f"{upstream}/echo", {})
    assert traced.status_code == 200, traced.text
    assert _seen(traced)["traceparent"] == TRACEPARENT  # no span of its own: the caller's, as it came
    assert _seen(traced)["tracestate"] == "vendor=1"
    assert "traceparent" not in _seen(plain)


def test_a_diagrams_own_traceparent_header_wins(upstream: str) -> None:
    own = f"00-{'1' * 32}-{'2' * 16}-01"
    with serve_in_thread(create_app(Settings(only_connectors=["http"]))) as proxy:
        answer = httpx.post(
            f"{proxy}/v1/do/http/GetRequestV2",
            json={"url": f"{upstream}/echo", "headers": {"traceparent": own}},
            headers={"traceparent": TRACEPARENT},
            timeout=30,
        )
    assert _seen(answer)["traceparent"] == own


SPAN = "00f067aa0ba902b7"
# (traceparent fields, tracestate fields) as a caller may send them, valid or not.
HEADER_CASES: list[tuple[list[str], list[str]]] = [
    ([TRACEPARENT], []),
    ([TRACEPARENT], ["vendor=1"]),
    ([TRACEPARENT], ["a=1,b=2", " c=3 "]),  # several fields are one list
    ([TRACEPARENT], ["a=1,,b=2"]),  # an empty member is valid
    ([TRACEPARENT], ["not a member"]),  # invalid: the tracestate is dropped, the traceparent kept
    ([TRACEPARENT], ["Upper=1"]),
    ([TRACEPARENT], ["a=" + "x" * 250]),
    ([TRACEPARENT], [f"k{n}=v" for n in range(33)]),  # over 32 members
    ([TRACEPARENT], ["a=" + "x" * 8200]),  # over the length OpenTelemetry takes
    ([f"00-{TRACE_ID}-{SPAN}-00"], []),  # not sampled
    ([f" \t00-{TRACE_ID}-{SPAN}-01 \t"], []),  # optional whitespace
    ([f"01-{TRACE_ID}-{SPAN}-01-future-fields"], ["a=1"]),  # a later version: read as version 00
    ([f"01-{TRACE_ID}-{SPAN}-01"], []),
    ([f"00-{TRACE_ID}-{SPAN}-01-extra"], []),  # version 00 has no more fields
    ([f"ff-{TRACE_ID}-{SPAN}-01"], []),
    ([f"00-{'0' * 32}-{SPAN}-01"], []),
    ([f"00-{TRACE_ID}-{'0' * 16}-01"], []),
    ([f"00-{TRACE_ID.upper()}-{SPAN}-01"], []),
    ([f"00-{TRACE_ID[:-1]}-{SPAN}-01"], []),
    ([f"00-{TRACE_ID}-{SPAN}-1"], []),
    ([f"00-{TRACE_ID}-{SPAN}-01" + " " * 500], []),  # over 512 characters
    (["garbage"], ["a=1"]),
    ([], ["a=1"]),
    (["first-is-not-valid", TRACEPARENT], []),  # the last field counts, as for any repeated header
]


def _through_opentelemetry(parents: list[str], states: list[str]) -> dict[str, str]:
    """What OpenTelemetry's W3C propagator passes on for these headers: extract, then inject."""
    carrier: dict[str, Any] = {}
    if parents:
        carrier["traceparent"] = parents[-1]
    if states:
        carrier["tracestate"] = states
    context = TraceContextTextMapPropagator().extract(carrier)  # its default getter reads a list as fields
    out: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(out, context=context)
    return out


@pytest.mark.parametrize(("parents", "states"), HEADER_CASES)
def test_tracing_off_passes_on_what_opentelemetrys_propagator_would(parents: list[str], states: list[str]) -> None:
    headers = [(b"traceparent", value.encode()) for value in parents] + [
        (b"tracestate", value.encode()) for value in states
    ]
    tracing = Tracing()
    span, token = tracing.start("http/GetRequestV2", incoming([(b"content-type", b"application/json"), *headers]))
    try:
        passed_on = trace_headers()
    finally:
        tracing.end(span, token, Outcome(200, b"{}"))
    assert span is None and passed_on == _through_opentelemetry(parents, states)
    assert trace_headers() == {}  # the call ended: nothing left to pass on


@pytest.mark.parametrize(("parents", "states"), HEADER_CASES)
def test_with_tracing_the_parent_is_the_span_opentelemetrys_propagator_extracts(
    parents: list[str], states: list[str]
) -> None:
    headers = [(b"traceparent", value.encode()) for value in parents] + [
        (b"tracestate", value.encode()) for value in states
    ]
    carried = incoming(headers)
    carrier: dict[str, Any] = {"traceparent": parents[-1]} if parents else {}
    if states:
        carrier["tracestate"] = states
    expected = trace.get_current_span(TraceContextTextMapPropagator().extract(carrier)).get_span_context()
    if carried is None:
        assert not expected.is_valid
    else:
        assert trace.get_current_span(parent_context(carried)).get_span_context() == expected


def test_tracing_off_leaves_the_opentelemetry_context_alone() -> None:
    """A command's own use of OpenTelemetry sees no span the proxy did not make."""
    tracing = Tracing()
    span, token = tracing.start("http/GetRequestV2", incoming([(b"traceparent", TRACEPARENT.encode())]))
    try:
        assert not trace.get_current_span().get_span_context().is_valid
        assert otel_context.get_current() == {}
    finally:
        tracing.end(span, token, Outcome(200, b"{}"))


def test_with_tracing_each_call_is_a_server_span_parent_of_the_upstream_call(
    upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app) as otlp:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{otlp}/v1/traces")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "connector-proxy-test")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        with serve_in_thread(create_app(Settings(only_connectors=["http"], tracing=True))) as proxy:
            ok = _get(proxy, f"{upstream}/echo", {"traceparent": TRACEPARENT})
            failed = _get(proxy, f"{upstream}/missing", {"traceparent": TRACEPARENT})
            untraced = _get(proxy, f"{upstream}/echo", {})
        # The app's shutdown exported what was buffered.
    assert ok.status_code == 200 and failed.json()["error"]["error_code"] == "HttpError404"
    assert len(receiver.spans) == 3
    by_outcome = {_attributes(span)["connector_proxy.outcome"]: span for span in receiver.spans}
    assert set(by_outcome) == {"success", "command_error"}
    mine = [span for span in receiver.spans if span.trace_id.hex() == TRACE_ID]
    assert len(mine) == 2 and all(span.parent_span_id.hex() == PARENT_ID for span in mine)
    success = next(span for span in mine if _attributes(span)["connector_proxy.outcome"] == "success")
    assert success.name == "POST /v1/do/http/GetRequestV2" and success.kind == 2  # SPAN_KIND_SERVER
    # The upstream got the proxy's span as its parent, in the caller's trace.
    assert _seen(ok)["traceparent"] == f"00-{TRACE_ID}-{success.span_id.hex()}-01"
    error = next(span for span in mine if span is not success)
    assert _attributes(error)["connector_proxy.error_code"] == "HttpError404"
    assert error.status.code == 2  # STATUS_CODE_ERROR
    # A call without a traceparent starts a trace of its own, passed on too.
    root = next(span for span in receiver.spans if span.trace_id.hex() != TRACE_ID)
    assert root.parent_span_id == b""
    assert _seen(untraced)["traceparent"].split("-")[1] == root.trace_id.hex()


def _attributes(span: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in span.attributes:
        value = item.value
        values[item.key] = value.string_value if value.HasField("string_value") else value.int_value
    return values
