"""The helm test pod's script, rendered by helm and run against a stand-in proxy on 127.0.0.1.

It passes only when the proxy lists what the release configured: every expected command, and at
least one command whenever the release installs a Connector.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from chart.helm import HELM_4, helm_for
from proxytest.servers import serve_in_thread

URL_CONNECTOR = {
    "connectors[0].name": "legacy",
    "connectors[0].spec.source.url.endpoint": "http://legacy.example:7004",
}


def _catalog_server(ids: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/liveness")
    async def liveness() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/v1/commands")
    async def commands() -> list[dict[str, Any]]:
        return [{"id": command, "parameters": []} for command in ids]

    return app


@pytest.fixture
def proxy() -> Iterator[Any]:
    servers: list[Any] = []

    def start(ids: list[str]) -> str:
        context = serve_in_thread(_catalog_server(ids))
        servers.append(context)
        return context.__enter__()

    yield start
    for context in servers:
        context.__exit__(None, None, None)


def _run_test_pod(sets: dict[str, str], url: str) -> subprocess.CompletedProcess[str]:
    objects = helm_for(HELM_4).template(sets={"tests.waitSeconds": "1", "proxy.apiKey.value": "", **sets})
    [pod] = [o for o in objects if o["kind"] == "Pod"]
    [container] = pod["spec"]["containers"]
    env = {item["name"]: item.get("value", "") for item in container["env"] if "value" in item}
    env["PROXY_URL"] = url
    return subprocess.run(
        [sys.executable, "-c", container["args"][0]], env=env, capture_output=True, text=True, timeout=60
    )


def test_an_empty_catalog_fails_when_the_release_installs_a_connector(proxy: Any) -> None:
    result = _run_test_pod({"httpConnector.enabled": "false", **URL_CONNECTOR}, proxy([]))
    assert result.returncode != 0
    assert "the release installs 1 Connector(s) but GET /v1/commands lists none" in result.stderr


def test_any_command_satisfies_a_connector_without_expected_ids(proxy: Any) -> None:
    result = _run_test_pod({"httpConnector.enabled": "false", **URL_CONNECTOR}, proxy(["legacy/Ping"]))
    assert result.returncode == 0, result.stderr
    assert "lists 1 commands" in result.stdout


def test_nothing_installed_nothing_expected(proxy: Any) -> None:
    assert _run_test_pod({"httpConnector.enabled": "false"}, proxy([])).returncode == 0


def test_expected_commands_of_connectors_and_first_party_ones(proxy: Any) -> None:
    sets = {**URL_CONNECTOR, "connectors[0].expectedCommands[0]": "legacy/Ping"}
    missing = _run_test_pod(sets, proxy(["http/GetRequestV2"]))
    assert missing.returncode != 0
    assert "does not list ['legacy/Ping']" in missing.stderr
    assert _run_test_pod(sets, proxy(["http/GetRequestV2", "legacy/Ping"])).returncode == 0
    first_party = _run_test_pod(
        {"postgresConnector.enabled": "true", "postgresConnector.configSecret": "db"}, proxy(["http/GetRequestV2"])
    )
    assert "does not list ['pg/Query']" in first_party.stderr
