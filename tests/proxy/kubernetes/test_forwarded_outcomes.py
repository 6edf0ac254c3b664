"""A front proxy counts a forwarded call as the workload answered it, and the workload's log line
of the call carries the front proxy's request id. The workload is a real proxy app on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connector_proxy.call_context import CallContext, current_call
from connector_proxy.execution import Runtime
from connector_proxy.kubernetes.forwarding import Forwarder, RemoteCommand
from connector_proxy.kubernetes.registry import RemoteRegistryBuilder
from connector_proxy.tracing import Tracing, incoming
from proxytest.fake_workload import fake_workload
from proxytest.servers import serve_in_thread
from proxytest.shop import shop_app

NS = "spiff"


def connector(name: str, endpoint: str, commands: list[str]) -> dict[str, Any]:
    status = {
        "endpoint": endpoint,
        "commands": [{"id": command, "parameters": []} for command in commands],
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    metadata = {"namespace": NS, "name": name, "creationTimestamp": "2025-01-01T00:00:00Z"}
    return {"metadata": metadata, "spec": {"source": {"image": {"ref": "registry.example/c:1"}}}, "status": status}


def remote(forwarder: Forwarder, endpoint: str, command_id: str) -> RemoteCommand:
    registry = RemoteRegistryBuilder(forwarder).build([connector("shop", endpoint, [command_id])], revision=1)
    command = registry.commands[command_id]
    assert isinstance(command, RemoteCommand)
    return command


@pytest.mark.parametrize(
    ("body", "kind", "code", "status"),
    [
        (b'{"item": "tea"}', "success", None, 200),
        (b'{"item": "missing"}', "command_error", "ItemNotFound", 200),
        (b'{"item": "gone"}', "command_error", "http_410", 200),
        (b"{}", "dispatch_error", "missing_parameter", 400),
    ],
)
async def test_the_workloads_outcome_is_the_front_proxys(
    body: bytes,
    kind: str,
    code: str | None,
    status: int,
    servers: ExitStack,
    runtime: Runtime,
    forwarder: Forwarder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    workload = servers.enter_context(serve_in_thread(shop_app()))
    token = current_call.set(CallContext("front-request-1"))
    try:
        with caplog.at_level(logging.INFO, logger="connector_proxy.do"):
            outcome = await remote(forwarder, workload, "shop/Buy").run(body, runtime)
    finally:
        current_call.reset(token)
    assert (outcome.status, outcome.kind, outcome.error_code) == (status, kind, code)
    [line] = [r for r in caplog.records if r.getMessage() == "command answered"]  # the workload's
    assert line.__dict__["request_id"] == "front-request-1"


async def test_another_proxys_failures_are_read_from_the_status(
    servers: ExitStack, runtime: Runtime, forwarder: Forwarder
) -> None:
    """A proxy without the outcome headers (a fake one here): a 4xx is a dispatch error with the
    body's code, a 200 a success whatever its envelope holds."""
    other = servers.enter_context(serve_in_thread(fake_workload("shop", ["shop/Echo", "shop/Bad"])))
    outcome = await remote(forwarder, other, "shop/Echo").run(b"{}", runtime)
    assert (outcome.status, outcome.kind, outcome.error_code) == (200, "success", None)
    assert "x-request-id" not in outcome.body.decode()  # no call context: nothing to pass on
    bad = await remote(forwarder, other, "shop/Bad").run(b"{}", runtime)
    assert (bad.status, bad.kind, bad.error_code) == (400, "dispatch_error", "missing_parameter")


async def test_the_trace_context_goes_on_to_the_workload(
    servers: ExitStack, runtime: Runtime, forwarder: Forwarder
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    workload = servers.enter_context(serve_in_thread(fake_workload("shop", ["shop/Echo"])))
    command = remote(forwarder, workload, "shop/Echo")
    tracing = Tracing()  # tracing off: the caller's context goes on as it came
    span, token = tracing.start("shop/Echo", incoming([(b"traceparent", traceparent.encode())]))
    try:
        outcome = await command.run(b"{}", runtime)
    finally:
        tracing.end(span, token, outcome)
    assert json.loads(outcome.body)["command_response"]["body"]["headers"]["traceparent"] == traceparent


@pytest.mark.parametrize("command_id", ["shop/Echo", "my shop/Echo Twice", "café/Echo", "shop/Echo?x=1#f"])
async def test_any_reported_id_reaches_the_workload_as_itself(
    command_id: str, servers: ExitStack, runtime: Runtime, forwarder: Forwarder
) -> None:
    """Another proxy may report ids with spaces, ``?``, ``#`` or non-ASCII letters: each is forwarded
    percent-encoded, and the workload decodes the very same id."""
    seen: list[str] = []

    async def echo(request: Request) -> JSONResponse:
        seen.append(request.path_params["command_id"])
        return JSONResponse({"command_response": {"body": {}}, "error": None})

    workload = Starlette(routes=[Route("/v1/do/{command_id:path}", echo, methods=["POST"])])
    endpoint = servers.enter_context(serve_in_thread(workload))
    outcome = await remote(forwarder, endpoint, command_id).run(b"{}", runtime)
    assert outcome.status == 200
    assert seen == [command_id]
