"""The forwarder honours the environment's proxy settings (a site's egress proxy), per scheme and
``NO_PROXY``, against a real forward proxy on 127.0.0.1: a server that answers the absolute-URI
requests a client sends a proxy, so the workload's name is never resolved."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connector_proxy.kubernetes.forwarding import Forwarder
from proxytest.servers import free_port, serve_in_thread


async def _answer(request: Request) -> JSONResponse:
    return JSONResponse(
        {"host": request.headers.get("host"), "path": request.url.path, "agent": request.headers.get("user-agent")}
    )


@pytest.fixture
def forward_proxy() -> Iterator[str]:
    app = Starlette(routes=[Route("/{path:path}", _answer, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield url


async def test_forwards_go_through_the_environment_proxy(forward_proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy)
    forwarder = Forwarder()
    try:
        answer = await forwarder.forward("http://connector-demo.team-a.svc:7004", "/v1/do/demo/Run", b"{}", {})
    finally:
        await forwarder.aclose()
    assert answer.status == 200
    assert json.loads(answer.body) == {
        "host": "connector-demo.team-a.svc:7004",
        "path": "/v1/do/demo/Run",
        "agent": "spiff-connector-proxy",  # every request of the forwarder's client names it
    }


async def test_no_proxy_hosts_are_reached_directly(forward_proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    forwarder = Forwarder()
    try:
        answer = await forwarder.forward(forward_proxy, "/v1/do/demo/Run", b"{}", {})
    finally:
        await forwarder.aclose()
    assert json.loads(answer.body)["path"] == "/v1/do/demo/Run"


async def test_control_calls_go_through_the_environment_proxy(
    forward_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OAuth forwards and rechecks use the forwarder's other client, with the same proxy rules."""
    monkeypatch.setenv("HTTP_PROXY", forward_proxy)
    forwarder = Forwarder()
    try:
        answer = await forwarder.client.post("http://connector-demo.team-a.svc:7004/v1/auth/demo", content=b"{}")
    finally:
        await forwarder.aclose()
    assert answer.json()["host"] == "connector-demo.team-a.svc:7004"
