"""The live ``/openapi.json``: the protocol's operations and one typed operation per command, and
schemathesis (every check) against a real ``connector-proxy serve``, over the protocol document and
the live document, with and without an API key: zero failed checks.

The proxy serves the bundled connectors; their outbound calls go to a forward proxy on 127.0.0.1
that refuses every connection (``HTTP_PROXY``/``HTTPS_PROXY``, honoured by the HTTP connector), so
the URLs schemathesis generates are never reached."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from connector_proxy.app import create_app
from connector_proxy.live_openapi import CommandShape, live_document, protocol_document, request_schema
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from proxytest.serve_process import Proxy, serving
from proxytest.servers import free_port, serve_in_thread

ROOT = Path(__file__).parents[2]
PROTOCOL = ROOT / "docs" / "protocol" / "openapi.json"
KEY = "st-k3y-9f2c-never-logged"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES_PER_OPERATION = 25
RUN_TIMEOUT_S = 300


def test_the_package_ships_the_protocol_document_of_the_docs() -> None:
    assert protocol_document() == json.loads(PROTOCOL.read_text())


# --- the document's shape ---


def command_paths(document: dict[str, Any]) -> list[str]:
    return [p for p in document["paths"] if p.startswith("/v1/do/") and p != "/v1/do/{connector}/{command}"]


@pytest.fixture(scope="module")
def live(community_site: Path) -> Iterator[dict[str, Any]]:
    """The live document of a proxy with the bundled and the fixture connectors."""
    with serve_in_thread(create_app(Settings(connector_paths=[community_site]))) as url:
        yield httpx.get(f"{url}/openapi.json", timeout=30).json()


def test_every_command_has_its_own_operation(live: dict[str, Any], community_site: Path) -> None:
    with serve_in_thread(create_app(Settings(connector_paths=[community_site]))) as url:
        ids = {entry["id"] for entry in httpx.get(f"{url}/v1/commands", timeout=30).json()}
    assert set(command_paths(live)) == {f"/v1/do/{command_id}" for command_id in ids}
    get = live["paths"]["/v1/do/http/GetRequestV2"]["post"]
    assert (get["operationId"], get["tags"], get["summary"]) == ("do_http_GetRequestV2", ["http"], "http/GetRequestV2")
    assert "202" not in get["responses"] and "callbacks" not in get
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConnectorProxyResponseV2"
    }


def test_an_sdk_command_states_its_parameter_types(live: dict[str, Any]) -> None:
    body = live["paths"]["/v1/do/http/GetRequestV2"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["url"]
    assert body["properties"]["url"]["type"] == "string"
    assert body["properties"]["bearer_token"]["writeOnly"] is True
    assert (body["additionalProperties"], body["patternProperties"]) == (False, {"^spiff__": {}})
    validator = jsonschema.Draft202012Validator(body)
    assert validator.is_valid({"url": "https://example.org", "attempts": 2, "spiff__task_id": "t"})
    assert not validator.is_valid({"url": "https://example.org", "attempts": "2"})
    assert not validator.is_valid({"url": "https://example.org", "surprise": 1})


def test_a_community_command_takes_any_value_but_says_the_declared_type(live: dict[str, Any]) -> None:
    body = live["paths"]["/v1/do/example/Echo"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["message"]
    assert "type" not in body["properties"]["message"]
    assert "declared type: str" in body["properties"]["message"]["description"]


def test_a_command_taking_any_keyword_takes_unknown_parameters(live: dict[str, Any]) -> None:
    body = live["paths"]["/v1/do/example/AcceptsAnything"]["post"]["requestBody"]["content"]["application/json"]
    assert "additionalProperties" not in body["schema"]


def test_a_callback_command_documents_the_callback() -> None:
    entry = {"id": "c/Async", "parameters": [], "accepts_callback": True}
    body = request_schema(CommandShape(entry, typed=True, closed=True))
    assert body["properties"]["spiff__callback_url"]["type"] == "string"
    document = live_document({"paths": {}}, [CommandShape(entry, typed=True, closed=True)], api_key=False)
    assert "202" in document["paths"]["/v1/do/c/Async"]["post"]["responses"]


def test_with_an_api_key_the_guarded_operations_require_it(start_proxy: Any) -> None:
    document = httpx.get(f"{start_proxy(api_key=KEY)}/openapi.json", timeout=30).json()
    assert document["components"]["securitySchemes"]["ConnectorProxyApiKey"]["name"] == "Spiff-Connector-Proxy-Api-Key"
    guarded = {"/v1/commands", "/v1/auths", "/v1/status", "/v1/do/{connector}/{command}", "/v1/do/http/GetRequestV2"}
    for path, item in document["paths"].items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if path in guarded or path.startswith("/v1/do/"):
                assert operation["security"] == [{"ConnectorProxyApiKey": []}], path
                assert "401" in operation["responses"], path
            else:
                assert "security" not in operation, path
    assert KEY not in json.dumps(document)


def test_without_a_key_nothing_requires_one(live: dict[str, Any]) -> None:
    operations = [op for item in live["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert not any("security" in op for op in operations)
    assert not any("401" in op.get("responses", {}) for op in operations)


def test_the_document_follows_the_registry(tmp_path: Path) -> None:
    """A registry swap (Kubernetes mode, a reload) is reflected at the next request."""
    app = create_app(Settings(connector_paths=[tmp_path]))
    with serve_in_thread(app) as url:
        before = httpx.get(f"{url}/openapi.json", timeout=30).json()
        app.state.proxy.swap(Registry.empty())
        after = httpx.get(f"{url}/openapi.json", timeout=30).json()
    assert "/v1/do/http/GetRequestV2" in before["paths"]
    assert command_paths(after) == []


# --- schemathesis, every check, against a real proxy ---


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proxy]]:
    site = tmp_path_factory.mktemp("no-community")
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens: every outbound call fails there
    egress = {name: refused for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    egress.update(NO_PROXY="", no_proxy="")
    with serving(site, **egress) as open_proxy, serving(site, CONNECTOR_PROXY_API_KEY=KEY, **egress) as keyed:
        yield {"open": open_proxy, "keyed": keyed}


RUNS = {
    "protocol, no key": ("protocol", "open", False),
    "protocol, key sent": ("protocol", "keyed", True),
    "protocol, key missing": ("protocol", "keyed", False),
    "live, no key": ("live", "open", False),
    "live, key sent": ("live", "keyed", True),
    "live, key missing": ("live", "keyed", False),
}


@pytest.mark.parametrize("run", RUNS.values(), ids=RUNS.keys())
def test_schemathesis_finds_no_failed_check(
    proxies: dict[str, Proxy], run: tuple[str, str, bool], tmp_path: Path
) -> None:
    document, which, send_key = run
    proxy = proxies[which]
    location = [str(PROTOCOL), "--url", proxy.url] if document == "protocol" else [f"{proxy.url}/openapi.json"]
    command = [str(SCHEMATHESIS), "run", *location, "--checks", "all", "--max-examples", str(EXAMPLES_PER_OPERATION)]
    command += ["--seed", "1", "--generation-database", "none", "--no-color", "--request-timeout", "30"]
    if send_key:
        command += ["--header", f"Spiff-Connector-Proxy-Api-Key: {KEY}"]
    # Its working directory gets its cache (.schemathesis/): a fresh one, so no run depends on another.
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, cwd=tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    generated = [line for line in report.splitlines() if " generated, " in line]
    assert generated and "passed" in generated[-1] and "fail" not in generated[-1], report[-3000:]
    assert proxy.process.poll() is None
