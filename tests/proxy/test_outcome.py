"""``outcome_from_result``, table-driven: every result shape a connector can return."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from connector_proxy.errors import DispatchError
from connector_proxy.outcome import Outcome, outcome_from_result
from proxytest.protocol import protocol

V2_DEFAULTS = {"body": None, "mimetype": "application/json"}

V2: list[tuple[dict[str, Any], bool, int, dict[str, Any]]] = [
    (
        {"command_response": {"body": {"a": 1}, "mimetype": "text/plain"}, "command_response_version": 2},
        False,
        200,
        {
            "command_response": {"body": {"a": 1}, "mimetype": "text/plain"},
            "command_response_version": 2,
            "error": None,
            "spiff__logs": [],
        },
    ),
    (
        {"command_response": {}},
        False,
        200,
        {"command_response": V2_DEFAULTS, "command_response_version": 2, "error": None, "spiff__logs": []},
    ),
    (
        {"command_response_version": 2},
        True,
        202,
        {"command_response": V2_DEFAULTS, "command_response_version": 2, "error": None, "spiff__logs": []},
    ),
    (
        {"command_response": {"http_status": 404, "mimetype": ""}, "error": {"error_code": "E"}, "spiff__logs": "x"},
        False,
        200,
        {
            "command_response": {**V2_DEFAULTS, "http_status": 404},
            "command_response_version": 2,
            "error": {"error_code": "E", "message": ""},
            "spiff__logs": ["x"],
        },
    ),
    (
        {"command_response": {"headers": {"h": "v"}}, "spiff__logs": [1, "two"], "extra": True},
        False,
        200,
        {
            "command_response": {**V2_DEFAULTS, "headers": {"h": "v"}},
            "command_response_version": 2,
            "error": None,
            "spiff__logs": ["1", "two"],
            "extra": True,
        },
    ),
]


@pytest.mark.parametrize(("result", "accepted", "status", "envelope"), V2)
def test_v2(result: dict[str, Any], accepted: bool, status: int, envelope: dict[str, Any]) -> None:
    outcome = outcome_from_result(result, "c/C", accepted=accepted)
    assert (outcome.status, outcome.media_type) == (status, "application/json")
    assert orjson.loads(outcome.body) == envelope


LEGACY: list[tuple[dict[str, Any], Outcome]] = [
    ({"response": "plain", "status": 201, "mimetype": "text/plain"}, Outcome(201, b"plain", "text/plain")),
    ({"response": {"k": [1]}}, Outcome(200, b'{"k":[1]}')),
    ({"response": b"\x00raw", "status": "503"}, Outcome(503, b"\x00raw", error_code="http_503", kind="command_error")),
    ({"response": None, "mimetype": ""}, Outcome(200, b"null")),
    ({"response": 2**70}, Outcome(200, str(2**70).encode())),
]


@pytest.mark.parametrize(("result", "expected"), LEGACY)
def test_legacy_v1(result: dict[str, Any], expected: Outcome) -> None:
    assert outcome_from_result(result, "c/C") == expected


FAILED_V2: list[tuple[dict[str, Any], tuple[str, str | None]]] = [
    ({"command_response": {"body": 1}}, ("success", None)),
    ({"command_response": {"http_status": 299}}, ("success", None)),
    ({"command_response": {"http_status": 404}, "error": None}, ("command_error", "http_404")),
    ({"command_response": {"http_status": 302}}, ("command_error", "http_302")),
    (
        {"command_response": {"http_status": 404}, "error": {"error_code": "HttpError404"}},
        ("command_error", "HttpError404"),
    ),
    (
        {"command_response": {}, "error": {"error_code": "HttpConnectionError"}},
        ("command_error", "HttpConnectionError"),
    ),
]


@pytest.mark.parametrize(("result", "how"), FAILED_V2)
def test_a_v2_answer_says_how_the_command_went(result: dict[str, Any], how: tuple[str, str | None]) -> None:
    """A failed command's answer is a 200 like any other: its kind and code are what metrics count."""
    outcome = outcome_from_result(result, "c/C")
    assert outcome.status == 200
    assert (outcome.kind, outcome.error_code) == how


INVALID: list[tuple[Any, str]] = [
    ([1], "list instead of a response mapping"),
    ({}, "neither a v2 envelope nor a legacy response"),
    ({"command_response": []}, "a command_response that is not an object"),
    ({"command_response": {"http_status": "200"}}, "an http_status that is not an integer from 100 to 599"),
    ({"command_response": {"http_status": 99}}, "an http_status that is not an integer from 100 to 599"),
    ({"command_response": {"http_status": True}}, "an http_status that is not an integer from 100 to 599"),
    ({"command_response": {"headers": []}}, "headers that are not an object"),
    ({"command_response": {}, "error": "boom"}, "an error that is not an object"),
    ({"command_response": {}, "error": {"message": "m"}}, "an error without an error_code"),
    ({"command_response": {}, "spiff__logs": 3}, "spiff__logs that are not a list"),
    ({"response": "x", "status": "abc"}, "a legacy status that is not a number"),
    ({"response": "x", "status": 600}, "a legacy status outside 100-599"),
    ({"response": {1.5: object()}}, "a value that cannot be serialised as JSON"),
]


@pytest.mark.parametrize(("result", "why"), INVALID)
def test_invalid_results(result: Any, why: str) -> None:
    with pytest.raises(DispatchError) as refused:
        outcome_from_result(result, "c/C")
    error = refused.value
    assert (error.status, error.code, error.message) == (500, "invalid_command_result", f"Command c/C returned {why}.")


def test_the_protocol_document_declares_every_status_the_proxy_answers() -> None:
    paths = protocol()["paths"]
    do = set(paths["/v1/do/{connector}/{command}"]["post"]["responses"])
    assert {"200", "202", "400", "401", "404", "413", "415", "500", "503", "504"} <= do
    for catalog in ("/v1/commands", "/v1/auths"):
        assert {"200", "304", "401"} <= set(paths[catalog]["get"]["responses"])
