"""Schema keywords an SDK parameter declares are what dispatch enforces, and what the catalog publishes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest

from connector_proxy.app import create_app
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from proxytest.protocol import validate_do_response
from proxytest.servers import serve_in_thread
from spiff_connector_sdk import Connector, Context, Param, Result

weather = Connector("weather")

ITEM = {"type": "object", "required": ["at"], "properties": {"at": {"type": "string"}}, "additionalProperties": False}


@weather.command("Forecast")
async def forecast(
    ctx: Context,
    *,
    city: Annotated[str, Param("City", schema={"pattern": "^[A-Z][a-z]+$", "maxLength": 20})],
    days: Annotated[int, Param("Days ahead", schema={"minimum": 1, "maximum": 7})] = 3,
    unit: Annotated[str, Param("Unit", schema={"enum": ["C", "F"]})] = "C",
    alerts: Annotated[list[dict[str, Any]] | None, Param("Alerts", schema={"maxItems": 2, "items": ITEM})] = None,
    note: Annotated[str | None, Param("Free text, unconstrained")] = None,
) -> Result:
    return Result(body={"city": city, "days": days, "unit": unit, "alerts": alerts, "note": note})


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    loaded = load_sdk_connector(weather)
    assert loaded.problems == []
    embedded = EmbeddedConnectors(registry=Registry.build(loaded.commands), connectors=(weather,))
    with serve_in_thread(create_app(Settings(), embedded=embedded)) as url, httpx.Client(base_url=url) as http:
        yield http


def _do(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    response = client.post("/v1/do/weather/Forecast", json=body)
    validate_do_response(response.status_code, response.json())
    return response


def test_values_within_the_rules_pass(client: httpx.Client) -> None:
    body = {"city": "Lyon", "days": 7, "unit": "F", "alerts": [{"at": "noon"}], "note": "SECRETISH-but-free"}
    response = _do(client, body)
    assert response.status_code == 200
    assert response.json()["command_response"]["body"] == body
    assert _do(client, {"city": "Lyon", "alerts": None}).status_code == 200  # null is the type's, not constrained


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({"city": "Lyon", "days": 50}, "days: must satisfy maximum 7"),
        ({"city": "Lyon", "days": 0}, "days: must satisfy minimum 1"),
        ({"city": "lyon-SECRETISH"}, 'city: must satisfy pattern "^[A-Z][a-z]+$"'),
        ({"city": "Lyon" + "x" * 30}, "city: must satisfy maxLength 20"),
        ({"city": "Lyon", "unit": "K-SECRETISH"}, 'unit: must satisfy enum ["C", "F"]'),
        ({"city": "Lyon", "alerts": [{"at": "a"}] * 3}, "alerts: must satisfy maxItems 2"),
        ({"city": "Lyon", "alerts": [{"at": "a"}, {}]}, 'alerts/1: must satisfy required ["at"]'),
        (
            {"city": "Lyon", "alerts": [{"at": "a", "SECRETISH": 1}]},
            "alerts/0: must satisfy additionalProperties false",
        ),
    ],
)
def test_a_broken_rule_is_invalid_parameter_naming_the_rule_not_the_value(
    client: httpx.Client, body: dict[str, Any], rule: str
) -> None:
    response = _do(client, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["error_code"] == "invalid_parameter"
    assert rule in error["message"], error["message"]
    assert "SECRETISH" not in response.text


def test_the_catalog_publishes_the_rules_it_enforces(client: httpx.Client) -> None:
    [entry] = client.get("/v1/commands").json()
    schemas = {param["id"]: param["schema"] for param in entry["parameters"]}
    assert (schemas["days"]["minimum"], schemas["days"]["maximum"]) == (1, 7)
    assert schemas["unit"]["enum"] == ["C", "F"]
    assert schemas["alerts"]["items"] == ITEM
