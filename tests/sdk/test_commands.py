"""SDK connectors: catalog metadata, parameter validation, results, errors, 202 and lifespan."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connector_proxy.app import create_app
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from proxytest import sdk_fixture
from proxytest.logs import captured_log_text
from proxytest.protocol import validate, validate_do_response
from proxytest.servers import serve_in_thread


@pytest.fixture
def sdk_client() -> Iterator[httpx.Client]:
    loaded = load_sdk_connector(sdk_fixture.demo)
    assert loaded.problems == []
    embedded = EmbeddedConnectors(registry=Registry.build(loaded.commands), connectors=(sdk_fixture.demo,))
    settings = Settings(config={"SDK_TOKEN": "s3cr3t-config-value"}, command_timeout=1.0)
    with serve_in_thread(create_app(settings, embedded=embedded)) as url, httpx.Client(base_url=url) as http:
        yield http


def do(http: httpx.Client, command: str, body: object) -> httpx.Response:
    response = http.post(f"/v1/do/sdkdemo/{command}", json=body)
    validate_do_response(response.status_code, response.json())
    return response


def test_catalog_describes_sdk_parameters(sdk_client: httpx.Client) -> None:
    catalog = sdk_client.get("/v1/commands").json()
    validate("CommandCatalog", catalog)
    greet = next(c for c in catalog if c["id"] == "sdkdemo/Greet")
    assert greet["description"].startswith("Greet somebody, several times.")
    params = {p["id"]: p for p in greet["parameters"]}
    assert [p["id"] for p in greet["parameters"]] == ["name", "times", "style", "tags", "extra", "api_token"]
    assert (params["name"]["type"], params["name"]["required"]) == ("str", True)
    assert params["name"]["description"] == "Who to greet"
    assert params["name"]["schema"] == {"type": "string", "examples": ["Ada"]}
    assert (params["times"]["type"], params["times"]["required"]) == ("int", False)
    assert params["times"]["schema"]["default"] == 1
    assert params["style"]["type"] == "str"
    assert params["style"]["schema"]["enum"] == ["plain", "loud"]
    assert params["tags"]["type"] == "any"
    assert {"type": "array", "items": {"type": "string"}} in params["tags"]["schema"]["anyOf"]
    assert {"type": "object", "additionalProperties": True} in params["extra"]["schema"]["anyOf"]
    assert params["api_token"]["schema"]["writeOnly"] is True
    assert "writeOnly" not in params["name"]["schema"]
    start = next(c for c in catalog if c["id"] == "sdkdemo/Start")
    assert start["accepts_callback"] is True


def test_result_envelope_and_logs(sdk_client: httpx.Client) -> None:
    response = do(sdk_client, "Greet", {"name": "Ada", "times": 2, "style": "loud", "spiff__task_data": {"a": 1}})
    assert response.status_code == 200
    body = response.json()
    assert body["command_response"] == {
        "body": {"text": "HELLO ADA HELLO ADA", "tags": [], "task_keys": ["a"]},
        "mimetype": "application/json",
        "http_status": 200,
    }
    assert body["error"] is None
    assert body["spiff__logs"] == ["greeted 2 time(s)"]


def test_invalid_parameter_names_the_parameter_not_the_value(sdk_client: httpx.Client) -> None:
    response = do(sdk_client, "Greet", {"name": "Ada", "times": "many-SECRETISH", "style": "whisper"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["error_code"] == "invalid_parameter"
    assert "times" in error["message"] and "style" in error["message"]
    assert "many-SECRETISH" not in response.text and "whisper" not in response.text


@pytest.mark.parametrize("times", ["2", 2.5, True, None])
def test_parameters_are_checked_with_json_types(sdk_client: httpx.Client, times: object) -> None:
    """What the catalog's schema says is what is accepted: a number in a string is no integer."""
    response = do(sdk_client, "Greet", {"name": "Ada", "times": times})
    assert (response.status_code, response.json()["error"]["error_code"]) == (400, "invalid_parameter")
    assert "times" in response.json()["error"]["message"]


def test_missing_and_unknown_parameters(sdk_client: httpx.Client) -> None:
    missing = do(sdk_client, "Greet", {})
    assert (missing.status_code, missing.json()["error"]["error_code"]) == (400, "missing_parameter")
    unknown = do(sdk_client, "Greet", {"name": "x", "colour": "red"})
    assert (unknown.status_code, unknown.json()["error"]["error_code"]) == (400, "unknown_parameter")
    assert "colour" in unknown.json()["error"]["message"]
    anything = do(sdk_client, "Raw", {"colour": "red", "size": 3, "spiff__new_key": 1})
    assert anything.status_code == 200
    assert anything.json()["command_response"]["body"] == {"keys": ["colour", "size"]}


def test_command_error_is_a_200_envelope_with_the_code(sdk_client: httpx.Client) -> None:
    response = do(sdk_client, "Fail", {"code": "NotAllowed", "secret": "pw-123"})
    assert response.status_code == 200
    body = response.json()
    assert body["error"] == {"error_code": "NotAllowed", "message": "The command failed on purpose."}
    assert body["command_response"]["http_status"] == 422
    assert "pw-123" not in response.text


def test_error_result(sdk_client: httpx.Client) -> None:
    body = do(sdk_client, "ErrorResult", {}).json()
    assert body["error"]["error_code"] == "Conflict"
    assert body["command_response"]["http_status"] == 409


def test_crash_is_500_with_class_name_and_no_secret(sdk_client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        response = do(sdk_client, "Crash", {"password": "hunter2-very-secret"})
    assert response.status_code == 500
    assert response.json()["error"]["error_code"] == "RuntimeError"
    assert "hunter2-very-secret" not in response.text
    logged = captured_log_text(caplog)
    assert "hunter2-very-secret" not in logged
    assert "RuntimeError" in logged


def test_timeout_is_504(sdk_client: httpx.Client) -> None:
    response = do(sdk_client, "Sleep", {"seconds": 5})
    assert response.status_code == 504
    assert response.json()["error"]["error_code"] == "command_timeout"


def test_accepted_is_202_only_with_a_callback(sdk_client: httpx.Client) -> None:
    accepted = do(sdk_client, "Start", {"job": "j1", "spiff__callback_url": "http://127.0.0.1:1/cb"})
    assert accepted.status_code == 202
    assert accepted.json()["command_response"]["body"] == {"job": "j1", "callback": "http://127.0.0.1:1/cb"}
    sync = do(sdk_client, "Start", {"job": "j2"})
    assert sync.status_code == 200
    assert sync.json()["command_response"]["body"]["mode"] == "sync"


def test_config_reaches_commands(sdk_client: httpx.Client) -> None:
    assert do(sdk_client, "Config", {"key": "SDK_TOKEN"}).json()["command_response"]["body"] == {"present": True}
    assert do(sdk_client, "Config", {"key": "NOPE"}).json()["command_response"]["body"] == {"present": False}


def test_lifespan_is_entered_and_exited() -> None:
    sdk_fixture.LIFESPAN_EVENTS.clear()
    embedded = EmbeddedConnectors(registry=Registry.empty(), connectors=(sdk_fixture.demo,))
    with serve_in_thread(create_app(Settings(), embedded=embedded)):
        assert sdk_fixture.LIFESPAN_EVENTS == ["start"]
    assert sdk_fixture.LIFESPAN_EVENTS == ["start", "stop"]
