"""Kubernetes mode end to end: the API emulator, the real operator, proxies following Connector
resources, and real connector workloads on 127.0.0.1 behind them."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from kube.connectors import next_second
from kube.fixtures import KubeEmulator, eventually, run_operator, write_kubeconfig

from connector_operator.runner import build_registry
from connector_operator.settings import OperatorSettings
from connector_proxy.app import create_app
from connector_proxy.contract import API_VERSION
from connector_proxy.settings import Settings
from proxytest.fake_workload import fake_workload
from proxytest.paths import CRD as CRD_FILE
from proxytest.protocol import validate_do_response
from proxytest.servers import free_port, serve_in_thread

CRD = CRD_FILE
NS = "default"


def connector(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    body = {"source": {"url": {"endpoint": endpoint}}, **spec}
    return {"apiVersion": API_VERSION, "kind": "Connector", "metadata": {"name": name, "namespace": NS}, "spec": body}


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture
async def cluster(kube_emulator: KubeEmulator) -> AsyncIterator[KubeEmulator]:
    await kube_emulator.apply_crd(CRD)
    await kube_emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    settings = OperatorSettings(namespaces=[NS], discovery_interval=3600)
    async with run_operator(kube_emulator, registry=build_registry(settings), namespaces=[NS]):
        yield kube_emulator


def start_proxy(servers: ExitStack, **overrides: Any) -> str:
    settings = Settings(kubernetes=True, namespaces=[NS], **overrides)
    return servers.enter_context(serve_in_thread(create_app(settings)))


async def get(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url, **kwargs)


async def post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, json=body, **kwargs)


async def ids(proxy: str) -> set[str]:
    return {c["id"] for c in (await get(f"{proxy}/v1/commands")).json()}


async def listed(proxy: str, expected: set[str], within: float = 15) -> None:
    async def probe() -> bool:
        return await ids(proxy) == expected

    await eventually(probe, within=within)


async def test_every_replica_follows_connectors_and_routes_to_them(cluster: KubeEmulator, servers: ExitStack) -> None:
    one = servers.enter_context(serve_in_thread(fake_workload("one", ["alpha/Echo", "alpha/Later", "alpha/Bad"])))
    two = servers.enter_context(serve_in_thread(fake_workload("two", ["beta/Echo"])))
    proxies = [start_proxy(servers), start_proxy(servers)]
    for proxy in proxies:
        await listed(proxy, set())
        assert (await get(f"{proxy}/v1/readiness")).status_code == 200

    await cluster.create(connector("alpha", one))
    for proxy in proxies:
        await listed(proxy, {"alpha/Echo", "alpha/Later", "alpha/Bad"})

    body = {"x": 1, "spiff__task_data": {"k": "v"}, "spiff__callback_url": "http://127.0.0.1:1/cb"}
    through = await post(f"{proxies[0]}/v1/do/alpha/Echo", body, headers={"Spiff-Connector-Proxy-Api-Key": "callers"})
    direct = await post(f"{one}/v1/do/alpha/Echo", body)
    validate_do_response(through.status_code, through.json())
    assert through.status_code == direct.status_code == 200
    forwarded = through.json()["command_response"]["body"]
    assert forwarded["received"] == direct.json()["command_response"]["body"]["received"]
    assert "spiff-connector-proxy-api-key" not in forwarded["headers"]
    again = await post(f"{proxies[0]}/v1/do/alpha/Echo", body)
    assert "cookie" not in again.json()["command_response"]["body"]["headers"]  # the workload's cookie stayed out
    later = await post(f"{proxies[1]}/v1/do/alpha/Later", body)
    assert later.status_code == 202
    bad = await post(f"{proxies[1]}/v1/do/alpha/Bad", body)
    assert (bad.status_code, bad.json()["error"]["error_code"]) == (400, "missing_parameter")

    # A changed catalog replaces the old one; suspend withdraws it; delete removes it.
    await cluster.patch(API_VERSION, "Connector", NS, "alpha", {"spec": {"source": {"url": {"endpoint": two}}}})
    for proxy in proxies:
        await listed(proxy, {"beta/Echo"})
    assert (await post(f"{proxies[0]}/v1/do/beta/Echo", {})).json()["command_response"]["body"]["workload"] == "two"
    await cluster.patch(API_VERSION, "Connector", NS, "alpha", {"spec": {"suspend": True}})
    for proxy in proxies:
        await listed(proxy, set())
    await cluster.patch(API_VERSION, "Connector", NS, "alpha", {"spec": {"suspend": False}})
    await listed(proxies[0], {"beta/Echo"})
    await cluster.delete(API_VERSION, "Connector", NS, "alpha")
    for proxy in proxies:
        await listed(proxy, set())
    gone = await post(f"{proxies[0]}/v1/do/beta/Echo", {})
    assert (gone.status_code, gone.json()["error"]["error_code"]) == (404, "command_not_found")

    status = (await get(f"{proxies[0]}/v1/status")).json()
    assert status["revision"] >= 5 and status["kubernetes"]["synced"] is True
    metrics = (await get(f"{proxies[0]}/metrics")).text
    assert 'connector_proxy_command_requests_total{command="alpha/Echo",status="200"} 2.0' in metrics
    assert 'connector_proxy_command_errors_total{command="unknown",error_code="command_not_found"} 1.0' in metrics
    assert "connector_proxy_registry_revision" in metrics


async def test_url_source_api_key_comes_from_the_mounted_secret(
    cluster: KubeEmulator, servers: ExitStack, tmp_path: Path
) -> None:
    workload = servers.enter_context(serve_in_thread(fake_workload("keyed", ["keyed/Echo"])))
    (tmp_path / "workload-key").mkdir()
    (tmp_path / "workload-key" / "token").write_text("w0rkl0ad-key\n")
    secret = {"name": "workload-key", "key": "token"}
    await cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "workload-key", "namespace": NS},
            "data": {"token": base64.b64encode(b"w0rkl0ad-key").decode()},
        }
    )
    source = {"url": {"endpoint": workload, "apiKeySecretRef": secret}}
    obj = connector("keyed", workload)
    obj["spec"]["source"] = source
    await cluster.create(obj)
    proxy = start_proxy(servers, secrets_dir=tmp_path, api_key="front-key")
    await listed_with_key(proxy, {"keyed/Echo"})
    response = await post(f"{proxy}/v1/do/keyed/Echo", {}, headers={"Spiff-Connector-Proxy-Api-Key": "front-key"})
    headers = response.json()["command_response"]["body"]["headers"]
    assert headers["spiff-connector-proxy-api-key"] == "w0rkl0ad-key"


async def listed_with_key(proxy: str, expected: set[str]) -> None:
    async def probe() -> bool:
        response = await get(f"{proxy}/v1/commands", headers={"Spiff-Connector-Proxy-Api-Key": "front-key"})
        return {c["id"] for c in response.json()} == expected

    await eventually(probe, within=15)


async def test_dead_and_slow_connectors_only_affect_their_own_commands(
    cluster: KubeEmulator, servers: ExitStack
) -> None:
    release = threading.Event()
    slow = servers.enter_context(serve_in_thread(fake_workload("slow", ["slow/Slow", "slow/Echo"], release=release)))
    fast = servers.enter_context(serve_in_thread(fake_workload("fast", ["fast/Echo"])))
    dead_port = free_port()
    doomed = servers.enter_context(serve_in_thread(fake_workload("dead", ["dead/Echo"])))
    await cluster.create(connector("slow", slow, timeoutSeconds=3, concurrency=2))
    await cluster.create(connector("fast", fast))
    await cluster.create(connector("dead", doomed))
    proxy = start_proxy(servers, forward_timeout_margin=0)
    await listed(proxy, {"slow/Slow", "slow/Echo", "fast/Echo", "dead/Echo"})

    # The slow connector's commands time out on their own deadline...
    pending = [asyncio.create_task(post(f"{proxy}/v1/do/slow/Slow", {})) for _ in range(4)]
    # ...while the catalog and other connectors answer before any of them has finished.
    assert (await get(f"{proxy}/v1/commands")).status_code == 200
    assert (await post(f"{proxy}/v1/do/fast/Echo", {})).status_code == 200
    assert not any(task.done() for task in pending)
    results = await asyncio.gather(*pending)
    release.set()
    assert {(r.status_code, r.json()["error"]["error_code"]) for r in results} == {(504, "connector_timeout")}
    for result in results:
        validate_do_response(result.status_code, result.json())

    # A workload that is gone answers 503 connector_unavailable; its neighbours are unaffected.
    await cluster.patch(
        API_VERSION,
        "Connector",
        NS,
        "dead",
        {"status": {"endpoint": f"http://127.0.0.1:{dead_port}"}},
        subresource="status",
    )

    async def unavailable() -> httpx.Response | None:
        response = await post(f"{proxy}/v1/do/dead/Echo", {})
        return response if response.status_code == 503 else None

    response = await eventually(unavailable)
    assert response.json()["error"]["error_code"] == "connector_unavailable"
    validate_do_response(503, response.json())
    assert (await post(f"{proxy}/v1/do/fast/Echo", {})).status_code == 200


async def test_duplicate_ids_go_to_the_oldest_connector(cluster: KubeEmulator, servers: ExitStack) -> None:
    old = servers.enter_context(serve_in_thread(fake_workload("old", ["shared/Echo", "old/Only"])))
    new = servers.enter_context(serve_in_thread(fake_workload("new", ["shared/Echo", "new/Only"])))
    await cluster.create(connector("zeta-old", old))
    await eventually(lambda: _ready(cluster, "zeta-old"))
    await next_second()
    await cluster.create(connector("alpha-new", new))
    proxy = start_proxy(servers)
    await listed(proxy, {"shared/Echo", "old/Only", "new/Only"})
    answer = await post(f"{proxy}/v1/do/shared/Echo", {})
    assert answer.json()["command_response"]["body"]["workload"] == "old"


async def _ready(kube: KubeEmulator, name: str) -> bool:
    obj = await kube.get(API_VERSION, "Connector", NS, name) or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


class Gate:
    """A TCP relay to the API server that the test can close (an outage) and open again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.open = False
        self.connections: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.connections |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def close_all(self) -> None:
        self.open = False
        for writer in self.connections:
            writer.close()
        self.connections.clear()

    async def stop(self) -> None:
        self.close_all()
        if self.server is not None:
            self.server.close()


@asynccontextmanager
async def proxy_process(kubeconfig: Path) -> AsyncIterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_PROXY_")}
    env.update(
        KUBECONFIG=str(kubeconfig),
        CONNECTOR_PROXY_KUBERNETES="true",
        CONNECTOR_PROXY_NAMESPACES=NS,
        CONNECTOR_PROXY_HOST="127.0.0.1",
        CONNECTOR_PROXY_PORT=str(port),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector_proxy", "serve", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:

        async def live() -> bool:
            try:
                return (await get(f"{url}/v1/liveness")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(live, within=30)
        yield url
    finally:
        process.terminate()
        _, raw_stderr = await asyncio.wait_for(process.communicate(), timeout=15)
        stderr = raw_stderr.decode()
        assert "Traceback" not in stderr, stderr


async def test_api_outage_keeps_the_last_good_registry(
    cluster: KubeEmulator, servers: ExitStack, tmp_path: Path
) -> None:
    workload = servers.enter_context(serve_in_thread(fake_workload("w", ["w/Echo"])))
    await cluster.create(connector("w", workload))
    await eventually(lambda: _ready(cluster, "w"))
    gate = Gate(int(cluster.url.rsplit(":", 1)[1]))
    await gate.start()
    kubeconfig = write_kubeconfig(tmp_path / "gated-kubeconfig", f"http://127.0.0.1:{gate.port}")
    try:
        async with proxy_process(kubeconfig) as proxy:
            # Not ready before the first successful list; liveness stays up.
            readiness = await get(f"{proxy}/v1/readiness")
            assert readiness.status_code == 503 and readiness.json()["ready"] is False
            gate.open = True
            await listed(proxy, {"w/Echo"}, within=40)
            assert (await get(f"{proxy}/v1/readiness")).status_code == 200

            gate.close_all()  # the API goes away

            async def stale() -> dict[str, Any] | None:
                body = (await get(f"{proxy}/v1/readiness")).json()
                return body if body["kubernetes"]["stale"] else None

            report = await eventually(stale, within=20)
            assert report["ready"] is True and report["kubernetes"]["last_error"]
            assert await ids(proxy) == {"w/Echo"}
            assert (await post(f"{proxy}/v1/do/w/Echo", {})).status_code == 200

            gate.open = True  # back: the proxy re-lists and follows changes again
            await cluster.delete(API_VERSION, "Connector", NS, "w")
            await listed(proxy, set(), within=40)
    finally:
        await gate.stop()


async def test_embedded_connectors_can_be_served_beside_the_cluster(cluster: KubeEmulator, servers: ExitStack) -> None:
    workload = servers.enter_context(serve_in_thread(fake_workload("w", ["w/Echo", "http/GetRequestV2"])))
    await cluster.create(connector("w", workload))
    await eventually(lambda: _ready(cluster, "w"))
    only_cluster = start_proxy(servers)
    both = start_proxy(servers, embedded=True)
    await listed(only_cluster, {"w/Echo", "http/GetRequestV2"})
    await eventually(lambda: _has(both, "w/Echo"))
    listed_ids = await ids(both)
    assert {"http/PostRequestV2", "w/Echo"} <= listed_ids
    # The in-process command wins the duplicate id: it is not forwarded to the workload.
    answer = await post(f"{both}/v1/do/http/GetRequestV2", {"url": f"{workload}/v1/liveness"})
    assert answer.json()["command_response"]["body"] == {"ok": True}


async def _has(proxy: str, command_id: str) -> bool:
    return command_id in await ids(proxy)
