"""Property-based: whatever JSON (or garbage) reaches /v1/do, the answer is a well-formed envelope
and never a 5xx of the proxy's own making (500 only for a command that raised)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_proxy.app import create_app
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from proxytest import sdk_fixture
from proxytest.protocol import validate_do_response
from proxytest.servers import serve_in_thread

RAISING = {"sdkdemo/Crash"}
COMMANDS = ["Greet", "Fail", "Crash", "ErrorResult", "Start", "Config", "Raw", "Missing"]
PARAM_NAMES = ["name", "times", "style", "tags", "extra", "api_token", "code", "secret", "password", "job", "key"]
RESERVED = ["spiff__task_data", "spiff__callback_url", "spiff__process_instance_id", "spiff__task_id", "spiff__zzz"]


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    json_values.map(_dump),
    st.dictionaries(st.sampled_from(PARAM_NAMES + RESERVED) | st.text(max_size=10), json_values, max_size=6).map(_dump),
    st.binary(max_size=64),
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    loaded = load_sdk_connector(sdk_fixture.demo)
    embedded = EmbeddedConnectors(registry=Registry.build(loaded.commands), connectors=())
    app = create_app(Settings(command_timeout=2.0), embedded=embedded)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), body=bodies)
def test_any_body_gets_a_well_formed_answer(http: httpx.Client, command: str, body: bytes) -> None:
    response = http.post(f"/v1/do/sdkdemo/{command}", content=body, headers={"content-type": "application/json"})
    assert response.headers["content-type"].startswith("application/json")
    payload: Any = response.json()
    validate_do_response(response.status_code, payload)
    if response.status_code >= 500:
        assert f"sdkdemo/{command}" in RAISING, (response.status_code, payload)
        assert response.status_code == 500
        assert payload["error"]["error_code"] == "RuntimeError"
    else:
        assert response.status_code in (200, 202, 400, 404)
    if response.status_code == 404:
        assert payload["error"]["error_code"] == "command_not_found"
