"""``connector_proxy.kubernetes.recheck``: a url source's 401/403 to a forwarded call is logged, counted
and reported to the operator's recheck endpoint. Real servers on 127.0.0.1: a federated proxy
refusing the key (the proxy's own key check in front of a workload), the operator's own
:class:`~connector_operator.recheck.RecheckServer` (its recheck records what it is asked), and the
forwarder's real client. The whole path with the real API server is in ``tests/e2e/test_live_registry.py``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from kube.fixtures import eventually
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connector_operator.recheck import RecheckServer
from connector_proxy.api_key import ApiKeyMiddleware
from connector_proxy.execution import Runtime
from connector_proxy.kubernetes.forwarding import Forwarder, RemoteCommand
from connector_proxy.kubernetes.recheck import RecheckNotifier
from connector_proxy.kubernetes.registry import RemoteRegistryBuilder
from connector_proxy.metrics import ProxyMetrics
from proxytest.fake_workload import fake_workload
from proxytest.logs import captured_log_text
from proxytest.servers import free_port, serve_in_thread

NS = "team-a"
WORKLOAD_KEY = "w0rkl0ad-key-now"
MOUNTED_KEY = "st4le-mounted-key"
REFUSED_BODY = b'{"error":"Missing or invalid Spiff-Connector-Proxy-Api-Key header."}'


class OperatorRecorder:
    """The operator's recheck, recording what the proxy asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, namespace: str, name: str) -> None:
        self.calls.append((namespace, name))


@asynccontextmanager
async def operator_endpoint(**options: Any) -> AsyncIterator[tuple[str, OperatorRecorder]]:
    recorder = OperatorRecorder()
    server = RecheckServer([NS], recorder, **options)
    await server.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.port}", recorder
    finally:
        await server.stop()


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and never answers (an operator that hangs)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def status_workload(status: int) -> Starlette:
    async def do(_: Request) -> JSONResponse:
        return JSONResponse({"error": "refused"}, status_code=status)

    return Starlette(routes=[Route("/v1/do/{connector}/{command}", do, methods=["POST"])])


def mounted_key(tmp_path: Path) -> Path:
    path = tmp_path / "fed-key" / "token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MOUNTED_KEY + "\n")
    return tmp_path


def connector(name: str, endpoint: str, *, source: str = "url", secret: str | None = "fed-key") -> dict[str, Any]:
    if source == "url":
        url: dict[str, Any] = {"endpoint": endpoint}
        if secret is not None:
            url["apiKeySecretRef"] = {"name": secret, "key": "token"}
        spec: dict[str, Any] = {"source": {"url": url}}
    else:
        spec = {"source": {"pip": {"requirements": ["connector-example"]}}}
    commands = [{"id": f"{name}/Echo", "parameters": []}]
    status = {"endpoint": endpoint, "commands": commands, "conditions": [{"type": "Ready", "status": "True"}]}
    return {
        "metadata": {"namespace": NS, "name": name, "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": spec,
        "status": status,
    }


def command_of(
    forwarder: Forwarder, notifier: RecheckNotifier, obj: dict[str, Any], secrets_dir: Path | None
) -> RemoteCommand:
    registry = RemoteRegistryBuilder(forwarder, secrets_dir=secrets_dir, refusals=notifier).build([obj], revision=1)
    command = registry.commands[obj["status"]["commands"][0]["id"]]
    assert isinstance(command, RemoteCommand)
    return command


def refused_count(metrics: ProxyMetrics, connector: str, status: str = "401") -> float:
    value = metrics.registry.get_sample_value(
        "connector_proxy_forward_refused_total", {"connector": connector, "status": status}
    )
    return value or 0.0


async def test_a_refused_forward_is_logged_counted_and_the_operator_asked_once_per_interval(
    servers: ExitStack,
    forwarder: Forwarder,
    runtime: Runtime,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="connector_proxy")
    federated = servers.enter_context(
        serve_in_thread(ApiKeyMiddleware(fake_workload("fed", ["fed/Echo"]), api_key=WORKLOAD_KEY))
    )
    metrics = ProxyMetrics()
    async with operator_endpoint() as (operator, recorder):
        notifier = RecheckNotifier(operator, metrics.forward_refused, lambda: forwarder.client, interval=3600)
        command = command_of(forwarder, notifier, connector("fed", federated), mounted_key(tmp_path))

        outcome = await command.run(b"{}", runtime)
        assert (outcome.status, outcome.body) == (401, REFUSED_BODY)  # passed through unchanged
        assert refused_count(metrics, f"{NS}/fed") == 1
        await eventually(lambda: recorder.calls == [(NS, "fed")] and notifier.pending == 0, within=10)

        again = await command.run(b"{}", runtime)  # within the interval: counted, not asked again
        assert (again.status, again.body) == (401, REFUSED_BODY)
        assert refused_count(metrics, f"{NS}/fed") == 2 and notifier.pending == 0
        await asyncio.sleep(0.2)
        assert recorder.calls == [(NS, "fed")]

    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "connector_proxy.kubernetes.recheck"
    ]
    assert len(warnings) == 2
    fields = {k: getattr(warnings[0], k) for k in ("connector", "command", "status", "endpoint", "secret")}
    assert fields == {
        "connector": f"{NS}/fed",
        "command": "fed/Echo",
        "status": 401,
        "endpoint": federated,
        "secret": "fed-key",
    }
    assert any(r.getMessage() == "operator recheck requested" for r in caplog.records)
    logged = captured_log_text(caplog)
    assert MOUNTED_KEY not in logged and WORKLOAD_KEY not in logged


async def test_without_an_operator_url_a_refusal_is_only_logged_and_counted(
    servers: ExitStack, forwarder: Forwarder, runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connector_proxy")
    federated = servers.enter_context(serve_in_thread(status_workload(403)))
    metrics = ProxyMetrics()
    notifier = RecheckNotifier(None, metrics.forward_refused, lambda: forwarder.client)
    command = command_of(forwarder, notifier, connector("fed", federated, secret=None), None)
    outcome = await command.run(b"{}", runtime)
    assert (outcome.status, outcome.body) == (403, b'{"error":"refused"}')
    assert refused_count(metrics, f"{NS}/fed", "403") == 1
    assert notifier.pending == 0
    [warning] = [r for r in caplog.records if r.name == "connector_proxy.kubernetes.recheck"]
    assert (warning.levelname, warning.secret) == ("WARNING", None)  # no apiKeySecretRef


@pytest.mark.parametrize(("source", "status"), [("url", 200), ("url", 500), ("url", 404), ("pip", 401), ("pip", 403)])
async def test_only_a_url_sources_401_or_403_is_a_refusal(
    servers: ExitStack, forwarder: Forwarder, runtime: Runtime, source: str, status: int
) -> None:
    workload = servers.enter_context(serve_in_thread(status_workload(status)))
    metrics = ProxyMetrics()
    async with operator_endpoint() as (operator, recorder):
        notifier = RecheckNotifier(operator, metrics.forward_refused, lambda: forwarder.client)
        command = command_of(forwarder, notifier, connector("w", workload, source=source, secret=None), None)
        assert (await command.run(b"{}", runtime)).status == status
        assert notifier.pending == 0
        await asyncio.sleep(0.1)
    assert recorder.calls == []
    assert (
        metrics.registry.get_sample_value(
            "connector_proxy_forward_refused_total", {"connector": f"{NS}/w", "status": str(status)}
        )
        is None
    )


async def test_an_unreachable_operator_is_logged_at_info(
    servers: ExitStack, forwarder: Forwarder, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connector_proxy")
    federated = servers.enter_context(serve_in_thread(status_workload(401)))
    metrics = ProxyMetrics()
    notifier = RecheckNotifier(f"http://127.0.0.1:{free_port()}", metrics.forward_refused, lambda: forwarder.client)
    command = command_of(forwarder, notifier, connector("fed", federated, secret=None), None)
    assert (await command.run(b"{}", runtime)).status == 401
    await eventually(lambda: notifier.pending == 0, within=10)
    [failed] = [r for r in caplog.records if r.getMessage() == "operator recheck not delivered"]
    assert (failed.levelname, failed.connector, failed.error) == (
        "INFO",
        f"{NS}/fed",
        "ConnectError",
    )


async def test_a_hanging_operator_times_out_and_requests_in_flight_are_bounded(
    servers: ExitStack, forwarder: Forwarder, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connector_proxy")
    federated = servers.enter_context(serve_in_thread(status_workload(401)))
    metrics = ProxyMetrics()
    async with silent_server() as operator:
        notifier = RecheckNotifier(
            operator, metrics.forward_refused, lambda: forwarder.client, timeout=2, max_pending=1
        )
        first = command_of(forwarder, notifier, connector("one", federated, secret=None), None)
        second = command_of(forwarder, notifier, connector("two", federated, secret=None), None)
        assert (await first.run(b"{}", runtime)).status == 401
        assert (await second.run(b"{}", runtime)).status == 401  # the answer never waits for the operator
        assert notifier.pending == 1  # both answers came back while the first request still hangs
        await eventually(lambda: notifier.pending == 0, within=10)
    messages = [(r.getMessage(), getattr(r, "connector", None), getattr(r, "error", None)) for r in caplog.records]
    assert ("operator recheck not requested: too many requests in flight", f"{NS}/two", None) in messages
    assert ("operator recheck not delivered", f"{NS}/one", "TimeoutError") in messages
    assert refused_count(metrics, f"{NS}/one") == refused_count(metrics, f"{NS}/two") == 1


async def test_closing_cancels_the_requests_in_flight(
    servers: ExitStack, forwarder: Forwarder, runtime: Runtime
) -> None:
    federated = servers.enter_context(serve_in_thread(status_workload(401)))
    async with silent_server() as operator:
        notifier = RecheckNotifier(operator, ProxyMetrics().forward_refused, lambda: forwarder.client, timeout=30)
        command = command_of(forwarder, notifier, connector("fed", federated, secret=None), None)
        assert (await command.run(b"{}", runtime)).status == 401
        assert notifier.pending == 1
        await asyncio.wait_for(notifier.aclose(), timeout=5)
        assert notifier.pending == 0
