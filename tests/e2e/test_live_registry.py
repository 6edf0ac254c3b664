"""Kubernetes mode end to end against the real API server: the operator and the proxies as real
processes following Connector resources, real connector workloads on 127.0.0.1 behind them, and the
API server itself going away and coming back."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from controlplane import ControlPlane
from e2e.conftest import Kubectl
from e2e.realkube import OperatorInThread, Operators, RealCluster, operator_process, proxy_process
from kube.connectors import KeyedRuntime, catalog_in_status, condition, next_second, wait_condition
from kube.fixtures import eventually

from connector_proxy.app import create_app
from connector_proxy.catalog_map import CATALOG_KEY, read_catalog_map
from connector_proxy.contract import API_VERSION
from connector_proxy.settings import Settings
from proxytest.catalogs import sdk_catalog
from proxytest.fake_workload import fake_workload
from proxytest.logs import captured_log_text
from proxytest.protocol import validate_do_response
from proxytest.servers import free_port, serve_in_thread


def connector(kube: RealCluster, name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    body = {"source": {"url": {"endpoint": endpoint}}, **spec}
    metadata = {"name": name, "namespace": kube.namespace}
    return {"apiVersion": API_VERSION, "kind": "Connector", "metadata": metadata, "spec": body}


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def start_proxy(servers: ExitStack, kube: RealCluster, **overrides: Any) -> str:
    """A proxy in Kubernetes mode in a thread of this process (it logs in with ``$KUBECONFIG``)."""
    settings = Settings(kubernetes=True, namespaces=[kube.namespace], **overrides)
    return servers.enter_context(serve_in_thread(create_app(settings)))


async def get(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url, **kwargs)


async def post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, json=body, **kwargs)


async def ids(proxy: str) -> set[str]:
    return {c["id"] for c in (await get(f"{proxy}/v1/commands")).json()}


async def listed(proxy: str, expected: set[str], within: float = 30) -> None:
    async def probe() -> bool:
        return await ids(proxy) == expected

    await eventually(probe, within=within)


async def test_every_replica_follows_connectors_and_routes_to_them(
    kube: RealCluster, control_plane: ControlPlane, servers: ExitStack
) -> None:
    """The operator and two proxies as processes, nothing but the kubeconfig to find the API server by."""
    one = servers.enter_context(serve_in_thread(fake_workload("one", ["alpha/Echo", "alpha/Later", "alpha/Bad"])))
    two = servers.enter_context(serve_in_thread(fake_workload("two", ["beta/Echo"])))
    kubeconfig = control_plane.kubeconfig
    async with (
        operator_process(kubeconfig, kube.namespace),
        proxy_process(kubeconfig, kube.namespace) as first,
        proxy_process(kubeconfig, kube.namespace) as second,
    ):
        proxies = [first, second]
        for proxy in proxies:
            await listed(proxy, set())
            assert (await get(f"{proxy}/v1/readiness")).status_code == 200

        await kube.create(connector(kube, "alpha", one))
        for proxy in proxies:
            await listed(proxy, {"alpha/Echo", "alpha/Later", "alpha/Bad"})

        body = {"x": 1, "spiff__task_data": {"k": "v"}, "spiff__callback_url": "http://127.0.0.1:1/cb"}
        through = await post(f"{first}/v1/do/alpha/Echo", body, headers={"Spiff-Connector-Proxy-Api-Key": "callers"})
        direct = await post(f"{one}/v1/do/alpha/Echo", body)
        validate_do_response(through.status_code, through.json())
        assert through.status_code == direct.status_code == 200
        forwarded = through.json()["command_response"]["body"]
        assert forwarded["received"] == direct.json()["command_response"]["body"]["received"]
        assert "spiff-connector-proxy-api-key" not in forwarded["headers"]
        again = await post(f"{first}/v1/do/alpha/Echo", body)
        assert "cookie" not in again.json()["command_response"]["body"]["headers"]  # the workload's cookie stayed out
        later = await post(f"{second}/v1/do/alpha/Later", body)
        assert later.status_code == 202
        bad = await post(f"{second}/v1/do/alpha/Bad", body)
        assert (bad.status_code, bad.json()["error"]["error_code"]) == (400, "missing_parameter")

        # A changed catalog replaces the old one; suspend withdraws it; delete removes it.
        await kube.patch(
            API_VERSION, "Connector", kube.namespace, "alpha", {"spec": {"source": {"url": {"endpoint": two}}}}
        )
        for proxy in proxies:
            await listed(proxy, {"beta/Echo"})
        assert (await post(f"{first}/v1/do/beta/Echo", {})).json()["command_response"]["body"]["workload"] == "two"
        await kube.patch(API_VERSION, "Connector", kube.namespace, "alpha", {"spec": {"suspend": True}})
        for proxy in proxies:
            await listed(proxy, set())
        await kube.patch(API_VERSION, "Connector", kube.namespace, "alpha", {"spec": {"suspend": False}})
        await listed(first, {"beta/Echo"})
        await kube.delete(API_VERSION, "Connector", kube.namespace, "alpha")
        for proxy in proxies:
            await listed(proxy, set())
        gone = await post(f"{first}/v1/do/beta/Echo", {})
        assert (gone.status_code, gone.json()["error"]["error_code"]) == (404, "command_not_found")

        status = (await get(f"{first}/v1/status")).json()
        assert status["revision"] >= 5 and status["kubernetes"]["synced"] is True
        metrics = (await get(f"{first}/metrics")).text
        requests = 'connector_proxy_command_requests_total{command="alpha/Echo",outcome="success",status="200"} 2.0'
        assert requests in metrics
        labels = 'command="unknown",error_code="command_not_found",outcome="dispatch_error"'
        assert f"connector_proxy_command_errors_total{{{labels}}} 1.0" in metrics
        assert "connector_proxy_registry_revision" in metrics


async def test_operator_restart_resumes_and_the_proxies_follow(
    kube: RealCluster, control_plane: ControlPlane, servers: ExitStack
) -> None:
    one = servers.enter_context(serve_in_thread(fake_workload("one", ["alpha/Echo"])))
    two = servers.enter_context(serve_in_thread(fake_workload("two", ["beta/Echo"])))
    kubeconfig = control_plane.kubeconfig
    async with proxy_process(kubeconfig, kube.namespace) as proxy:
        async with operator_process(kubeconfig, kube.namespace):
            await kube.create(connector(kube, "moved", one))
            await listed(proxy, {"alpha/Echo"})
        # No operator runs while the Connector changes: the next one resumes it.
        await kube.patch(
            API_VERSION, "Connector", kube.namespace, "moved", {"spec": {"source": {"url": {"endpoint": two}}}}
        )
        await asyncio.sleep(1)
        assert await ids(proxy) == {"alpha/Echo"}  # what the status says until an operator catches up
        async with operator_process(kubeconfig, kube.namespace):
            await listed(proxy, {"beta/Echo"})


async def keyed_url_connector(
    kube: RealCluster, tmp_path: Path, name: str, endpoint: str, secret: str, key: str
) -> tuple[dict[str, Any], Path]:
    """A url-sourced Connector (not created yet) whose API key is the Secret ``secret``, created here,
    and mounted as the kubelet would at ``<tmp_path>/<secret>/token`` (returned with it)."""
    mounted = tmp_path / secret / "token"
    mounted.parent.mkdir()
    mounted.write_text(f"{key}\n")
    data = {"token": base64.b64encode(key.encode()).decode()}
    await kube.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": kube.namespace}, "data": data}
    )
    obj = connector(kube, name, endpoint)
    obj["spec"]["source"] = {"url": {"endpoint": endpoint, "apiKeySecretRef": {"name": secret, "key": "token"}}}
    return obj, mounted


async def test_url_source_api_key_comes_from_the_mounted_secret_and_rotates(
    kube: RealCluster, operators: Operators, servers: ExitStack, tmp_path: Path
) -> None:
    workload = servers.enter_context(serve_in_thread(fake_workload("keyed", ["keyed/Echo"])))
    obj, mounted = await keyed_url_connector(kube, tmp_path, "keyed", workload, "workload-key", "w0rkl0ad-key")
    await operators.start()
    await kube.create(obj)
    proxy = start_proxy(servers, kube, secrets_dir=tmp_path, api_key="front-key")
    await listed_with_key(proxy, {"keyed/Echo"})

    async def key_seen() -> str:
        response = await post(f"{proxy}/v1/do/keyed/Echo", {}, headers={"Spiff-Connector-Proxy-Api-Key": "front-key"})
        seen: str = response.json()["command_response"]["body"]["headers"]["spiff-connector-proxy-api-key"]
        return seen

    assert await key_seen() == "w0rkl0ad-key"
    # Rotation: the kubelet updates the mounted file, the Secret changes; the next rebuild reads the new key.
    mounted.write_text("r0tated-key\n")
    patch = {"data": {"token": base64.b64encode(b"r0tated-key").decode()}}
    await kube.patch("v1", "Secret", kube.namespace, "workload-key", patch)

    async def rotated() -> bool:
        return await key_seen() == "r0tated-key"

    await eventually(rotated, within=30)


async def test_a_federated_proxy_refusing_the_key_shows_on_the_connector_within_seconds(
    kube: RealCluster, operators: Operators, servers: ExitStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The federated proxy's key changes while the Secret (and its mounted copy) keep the old one. The
    operator re-discovers only every hour here and no Secret changes: only the proxy's report of the
    401 can make the Connector show it."""
    caplog.set_level(logging.INFO)
    federated = KeyedRuntime("f3d-key-0ne")
    endpoint = servers.enter_context(serve_in_thread(federated))
    obj, _ = await keyed_url_connector(kube, tmp_path, "fed", endpoint, "fed-key", "f3d-key-0ne")
    operator = await operators.start()
    await kube.create(obj)
    await wait_condition(kube, "fed", "Ready", "True", namespace=kube.namespace, within=30)
    operator_url = f"http://127.0.0.1:{operator.settings.recheck_port}"
    proxy = start_proxy(servers, kube, secrets_dir=tmp_path, operator_url=operator_url)
    await eventually(lambda: _has(proxy, "sdkdemo/Greet"), within=30)
    assert (await post(f"{proxy}/v1/do/sdkdemo/Greet", {"name": "Ada"})).status_code == 200

    federated.api_key = "f3d-key-tw0"  # rotated on the federated proxy's side only
    refused = await post(f"{proxy}/v1/do/sdkdemo/Greet", {"name": "Ada"})
    direct = await post(f"{endpoint}/v1/do/sdkdemo/Greet", {"name": "Ada"})
    assert (refused.status_code, refused.content) == (direct.status_code, direct.content)  # passed through
    assert refused.status_code == 401

    status = await wait_condition(kube, "fed", "Ready", "False", "Unauthorized", namespace=kube.namespace, within=15)
    assert "check the API key Secret" in condition(status, "Ready")["message"]
    metrics = (await get(f"{proxy}/metrics")).text
    assert f'connector_proxy_forward_refused_total{{connector="{kube.namespace}/fed",status="401"}} 1.0' in metrics
    [warning] = [
        r for r in caplog.records if r.name == "connector_proxy.kubernetes.recheck" and r.levelname == "WARNING"
    ]
    assert (warning.connector, warning.endpoint, warning.secret) == (f"{kube.namespace}/fed", endpoint, "fed-key")
    for key in ("f3d-key-0ne", "f3d-key-tw0"):
        assert key not in str(status)
        assert key not in captured_log_text(caplog)


async def listed_with_key(proxy: str, expected: set[str]) -> None:
    async def probe() -> bool:
        response = await get(f"{proxy}/v1/commands", headers={"Spiff-Connector-Proxy-Api-Key": "front-key"})
        return {c["id"] for c in response.json()} == expected

    await eventually(probe, within=30)


async def test_dead_and_slow_connectors_only_affect_their_own_commands(
    kube: RealCluster, operators: Operators, servers: ExitStack
) -> None:
    release = threading.Event()
    slow = servers.enter_context(serve_in_thread(fake_workload("slow", ["slow/Slow", "slow/Echo"], release=release)))
    fast = servers.enter_context(serve_in_thread(fake_workload("fast", ["fast/Echo"])))
    dead_port = free_port()
    doomed = servers.enter_context(serve_in_thread(fake_workload("dead", ["dead/Echo"])))
    await operators.start()
    await kube.create(connector(kube, "slow", slow, timeoutSeconds=3, concurrency=2))
    await kube.create(connector(kube, "fast", fast))
    await kube.create(connector(kube, "dead", doomed))
    proxy = start_proxy(servers, kube, forward_timeout_margin=0)
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

    # A workload that is gone answers 503 connector_unavailable; its neighbours are unaffected. (The
    # operator would notice at its next discovery; the proxy must not wait for that.)
    await operators.stop_all()
    status = {"status": {"endpoint": f"http://127.0.0.1:{dead_port}"}}
    await kube.patch(API_VERSION, "Connector", kube.namespace, "dead", status, subresource="status")

    async def unavailable() -> httpx.Response | None:
        response = await post(f"{proxy}/v1/do/dead/Echo", {})
        return response if response.status_code == 503 else None

    response = await eventually(unavailable)
    assert response.json()["error"]["error_code"] == "connector_unavailable"
    validate_do_response(503, response.json())
    assert (await post(f"{proxy}/v1/do/fast/Echo", {})).status_code == 200


async def test_an_outage_keeps_the_commands_answering_503_until_the_proxy_is_back(
    kube: RealCluster, operators: Operators, servers: ExitStack
) -> None:
    """The operator re-discovers every second: it sees the federated proxy die, keeps its catalog
    (Ready=False, Unreachable) and every proxy answers 503 connector_unavailable (which spiff-arena
    retries), never 404; back on its port, it serves again with no change to the registry."""
    port = free_port()
    outage = ExitStack()
    outage.enter_context(serve_in_thread(fake_workload("fed", ["fed/Echo"]), port=port))
    await operators.start(discovery_interval=1)
    await kube.create(connector(kube, "fed", f"http://127.0.0.1:{port}"))
    await wait_condition(kube, "fed", "Ready", "True", namespace=kube.namespace, within=30)
    proxy = start_proxy(servers, kube)
    await listed(proxy, {"fed/Echo"})
    assert (await post(f"{proxy}/v1/do/fed/Echo", {})).status_code == 200

    outage.close()
    status = await wait_condition(kube, "fed", "Ready", "False", "Unreachable", namespace=kube.namespace, within=30)
    assert [c["id"] for c in (await catalog_in_status(kube, status, kube.namespace)).commands] == ["fed/Echo"]
    response = await post(f"{proxy}/v1/do/fed/Echo", {})
    assert (response.status_code, response.json()["error"]["error_code"]) == (503, "connector_unavailable")
    assert await ids(proxy) == {"fed/Echo"}

    servers.enter_context(serve_in_thread(fake_workload("fed", ["fed/Echo"]), port=port))
    await wait_condition(kube, "fed", "Ready", "True", namespace=kube.namespace, within=30)
    assert (await post(f"{proxy}/v1/do/fed/Echo", {})).status_code == 200


async def test_with_a_grace_an_outage_withdraws_the_commands_after_it(
    kube: RealCluster, operators: Operators, servers: ExitStack
) -> None:
    outage = ExitStack()
    runtime = outage.enter_context(serve_in_thread(fake_workload("fed", ["fed/Echo"])))
    await operators.start(discovery_interval=1, withdraw_after=2)
    await kube.create(connector(kube, "fed", runtime))
    await wait_condition(kube, "fed", "Ready", "True", namespace=kube.namespace, within=30)
    outage.close()

    async def withdrawn() -> dict[str, Any] | None:
        obj = await kube.get(API_VERSION, "Connector", kube.namespace, "fed")
        status = (obj or {}).get("status") or {}
        return status if status.get("commandCount") == 0 else None

    status = await eventually(withdrawn, within=60)
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Unreachable")
    assert ready["message"].endswith("Its commands were withdrawn after 2 s (CONNECTOR_OPERATOR_WITHDRAW_AFTER).")


async def test_duplicate_ids_go_to_the_oldest_connector(
    kube: RealCluster, operators: Operators, servers: ExitStack
) -> None:
    old = servers.enter_context(serve_in_thread(fake_workload("old", ["shared/Echo", "old/Only"])))
    new = servers.enter_context(serve_in_thread(fake_workload("new", ["shared/Echo", "new/Only"])))
    await operators.start()
    await kube.create(connector(kube, "zeta-old", old))
    await eventually(lambda: _ready(kube, "zeta-old"), within=30)
    await next_second()
    await kube.create(connector(kube, "alpha-new", new))
    proxies = [start_proxy(servers, kube), start_proxy(servers, kube)]
    for proxy in proxies:
        await listed(proxy, {"shared/Echo", "old/Only", "new/Only"})
        answer = await post(f"{proxy}/v1/do/shared/Echo", {})
        assert answer.json()["command_response"]["body"]["workload"] == "old"


async def _ready(kube: RealCluster, name: str) -> bool:
    obj = await kube.get(API_VERSION, "Connector", kube.namespace, name) or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def test_api_server_restart_keeps_the_last_good_registry(
    kube: RealCluster, control_plane: ControlPlane, operators: Operators, servers: ExitStack
) -> None:
    workload = servers.enter_context(serve_in_thread(fake_workload("w", ["w/Echo"])))
    await operators.start()
    await kube.create(connector(kube, "w", workload))
    await eventually(lambda: _ready(kube, "w"), within=30)
    control_plane.stop_apiserver()
    restarted = False
    try:
        async with proxy_process(control_plane.kubeconfig, kube.namespace) as proxy:
            # Not ready before the first successful list; liveness stays up.
            readiness = await get(f"{proxy}/v1/readiness")
            assert readiness.status_code == 503 and readiness.json()["ready"] is False
            assert "connector_proxy_registry_stale 1.0" in (await get(f"{proxy}/metrics")).text
            await asyncio.to_thread(control_plane.start_apiserver)
            await listed(proxy, {"w/Echo"}, within=60)
            assert (await get(f"{proxy}/v1/readiness")).status_code == 200
            assert "connector_proxy_registry_stale 0.0" in (await get(f"{proxy}/metrics")).text

            control_plane.stop_apiserver()  # the API goes away

            async def stale() -> dict[str, Any] | None:
                body = (await get(f"{proxy}/v1/readiness")).json()
                return body if body["kubernetes"]["stale"] else None

            report = await eventually(stale, within=40)
            assert report["ready"] is True and report["kubernetes"]["last_error"]
            assert "connector_proxy_registry_stale 1.0" in (await get(f"{proxy}/metrics")).text  # alerts fire
            assert await ids(proxy) == {"w/Echo"}
            assert (await post(f"{proxy}/v1/do/w/Echo", {})).status_code == 200

            await asyncio.to_thread(control_plane.start_apiserver)  # back: the proxy re-lists, follows again
            restarted = True
            await kube.delete(API_VERSION, "Connector", kube.namespace, "w")
            await listed(proxy, set(), within=60)
            assert (await get(f"{proxy}/v1/readiness")).json()["kubernetes"]["stale"] is False
    finally:
        if not restarted:
            await asyncio.to_thread(control_plane.start_apiserver)


async def test_embedded_connectors_can_be_served_beside_the_cluster(
    kube: RealCluster, operators: Operators, servers: ExitStack
) -> None:
    workload = servers.enter_context(serve_in_thread(fake_workload("w", ["w/Echo", "http/GetRequestV2"])))
    await operators.start()
    await kube.create(connector(kube, "w", workload))
    await eventually(lambda: _ready(kube, "w"), within=30)
    only_cluster = start_proxy(servers, kube)
    both = start_proxy(servers, kube, embedded=True)
    await listed(only_cluster, {"w/Echo", "http/GetRequestV2"})
    await eventually(lambda: _has(both, "w/Echo"))
    listed_ids = await ids(both)
    assert {"http/PostRequestV2", "w/Echo"} <= listed_ids
    # The in-process command wins the duplicate id: it is not forwarded to the workload.
    answer = await post(f"{both}/v1/do/http/GetRequestV2", {"url": f"{workload}/v1/liveness"})
    assert answer.json()["command_response"]["body"] == {"ok": True}


async def _has(proxy: str, command_id: str) -> bool:
    return command_id in await ids(proxy)


async def _discoveries(operator: OperatorInThread) -> float:
    text = (await get(f"http://127.0.0.1:{operator.settings.recheck_port}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('connector_operator_discoveries_total{outcome="ok"}')
    )


async def test_a_connector_of_5000_commands_is_served_and_described_briefly(
    kube: RealCluster, operators: Operators, servers: ExitStack, kubectl: Kubectl
) -> None:
    """The catalog lives in the Connector's own ConfigMap, gzipped: the Connector stays a few KB (etcd
    refuses objects over 1.5 MiB) and ``kubectl describe`` shows its conditions, not 5,000 commands."""
    catalog = sdk_catalog(5000)
    workload = servers.enter_context(serve_in_thread(fake_workload("big", [], catalog=catalog)))
    operator = await operators.start(discovery_interval=1)
    await kube.create(connector(kube, "big", workload))
    status = await wait_condition(kube, "big", "Ready", "True", namespace=kube.namespace, within=60)
    assert (status["commandCount"], status["authCount"]) == (5000, 0)
    assert len(orjson.dumps(status)) < 4096
    stored = await catalog_in_status(kube, status, kube.namespace)
    assert stored.commands == catalog
    name = status["catalogConfigMap"]
    config_map = await kube.get("v1", "ConfigMap", kube.namespace, name)
    assert config_map is not None
    assert len(base64.b64decode(config_map["binaryData"][CATALOG_KEY])) * 10 < 1024 * 1024  # a ConfigMap's limit

    described = kubectl("describe", "connector", "big", "-n", kube.namespace).stdout
    lines = [line.strip() for line in described.splitlines()]
    assert len(lines) < 80 and "Lookup" not in described, described
    summary = lines.index("Status:")  # the status opens with the counts and the catalog, then the conditions
    assert re.fullmatch(r"Command Count:\s+5000", lines[summary + 4]), described
    assert lines[summary + 5] == "Conditions:" and lines[summary + 11] == "Type:                  Ready", described

    proxy = start_proxy(servers, kube)
    await listed(proxy, {c["id"] for c in catalog}, within=60)
    last = catalog[-1]["id"]
    answer = await post(f"{proxy}/v1/do/{last}", {})
    assert answer.json()["command_response"]["body"]["command"] == last

    # Re-discovered every second, an unchanged catalog is not written again.
    seen = await _discoveries(operator)

    async def rediscovered() -> bool:
        return await _discoveries(operator) >= seen + 2

    await eventually(rediscovered, within=30)
    again = await kube.get("v1", "ConfigMap", kube.namespace, name)
    assert again is not None and again["metadata"]["resourceVersion"] == config_map["metadata"]["resourceVersion"]

    # Deleted by hand: every proxy keeps serving the verified catalog, and the operator writes it again.
    await kube.delete("v1", "ConfigMap", kube.namespace, name)
    assert (await post(f"{proxy}/v1/do/{last}", {})).status_code == 200
    recreated = await eventually(lambda: kube.get("v1", "ConfigMap", kube.namespace, name), within=30)
    assert read_catalog_map(recreated).hash == status["catalogHash"]
    assert await ids(proxy) == {c["id"] for c in catalog}


async def test_a_catalog_too_large_for_a_config_map_is_refused_with_its_reason(
    kube: RealCluster, operators: Operators, servers: ExitStack
) -> None:
    incompressible = [
        {"id": f"big/Command{i:04d}", "parameters": [], "description": os.urandom(400).hex()} for i in range(2000)
    ]
    workload = servers.enter_context(serve_in_thread(fake_workload("big", [], catalog=incompressible)))
    await operators.start()
    await kube.create(connector(kube, "huge", workload))
    status = await wait_condition(kube, "huge", "Ready", "False", "CatalogTooLarge", namespace=kube.namespace)
    assert status["commandCount"] == 0 and "catalogHash" not in status
    message = condition(status, "Ready")["message"]
    assert message.startswith("The catalog of 2000 command(s) is ") and "split the connector" in message
    proxy = start_proxy(servers, kube)
    await listed(proxy, set())
