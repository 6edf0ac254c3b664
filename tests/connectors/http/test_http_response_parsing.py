"""How upstream responses become the command's body."""

from __future__ import annotations

from typing import Any

import pytest

from spiff_connector_http.commands import get_request, head_request
from spiff_connector_http.response import Response, decode_headers, parse_body, response_headers
from spiff_connector_sdk import Context


async def test_xml_becomes_a_dict(server: Any) -> None:
    result = await get_request(Context(), url=server.url("/xml"))
    assert result.error is None
    assert result.body == {"order": {"@id": "7", "item": ["book", "pen"]}}


async def test_text_becomes_raw_response(server: Any) -> None:
    result = await get_request(Context(), url=server.url("/text"))
    assert (result.error, result.body) == (None, {"raw_response": "hello"})


async def test_empty_json_body_is_an_empty_object(server: Any) -> None:
    result = await get_request(Context(), url=server.url("/empty-json"))
    assert (result.error, result.http_status, result.body) == (None, 200, {})


@pytest.mark.parametrize("status", ["200", "204"])
async def test_empty_text_body_is_an_empty_raw_response(server: Any, status: str) -> None:
    result = await get_request(Context(), url=server.url(f"/empty?status={status}"))
    assert (result.error, result.http_status, result.body) == (None, int(status), {"raw_response": ""})


async def test_head_has_an_empty_body(server: Any) -> None:
    json_head = await head_request(Context(), url=server.url("/json"))
    assert (json_head.error, json_head.http_status, json_head.body) == (None, 200, {})
    text_head = await head_request(Context(), url=server.url("/text"))
    assert text_head.body == {"raw_response": ""}


async def test_invalid_json_keeps_status_and_raw_text(server: Any) -> None:
    result = await get_request(Context(), url=server.url("/bad-json"))
    assert result.http_status == 200
    assert result.body == {"raw_response": "{not json"}
    assert result.error is not None
    assert result.error.code == "JSONDecodeError"
    assert result.error.message.startswith(f"GET {server.url('/bad-json')} returned HTTP 200 with a JSON body")


async def test_invalid_json_wins_over_the_http_error(server: Any) -> None:
    """As in the community connector: the parse error is set first and HttpError only when none is."""
    result = await get_request(Context(), url=server.url("/bad-json?status=500"))
    assert (result.http_status, result.body) == (500, {"raw_response": "{not json"})
    assert result.error is not None
    assert result.error.code == "JSONDecodeError"


async def test_invalid_xml(server: Any) -> None:
    result = await get_request(Context(), url=server.url("/bad-xml"))
    assert result.body == {"raw_response": "<a><b></a>"}
    assert result.error is not None
    assert result.error.code == "ExpatError"


async def test_error_responses_still_carry_their_body(server: Any) -> None:
    result = await get_request(Context(), url=server.url("/status/422"))
    assert result.http_status == 422
    assert result.body == {"status": 422}
    assert result.error is not None
    assert result.error.code == "HttpError422"
    assert result.error.message == f"GET {server.url('/status/422')} returned HTTP 422 Unprocessable Entity"


@pytest.mark.parametrize(
    ("content_type", "content", "body", "error_code"),
    [
        ("application/json; charset=utf-8", b'{"a": [1, 2]}', {"a": [1, 2]}, None),
        ("application/problem+json", b'{"title": "x"}', {"title": "x"}, None),
        ("Application/JSON", b"[1]", [1], None),
        ("application/json", b"  \n", {}, None),
        ("application/json", b"[1, 2]", [1, 2], None),
        ("application/json", b"nope", {"raw_response": "nope"}, "JSONDecodeError"),
        ("text/xml; charset=utf-8", b"<a>1</a>", {"a": "1"}, None),
        ("application/atom+xml", b"<feed/>", {"feed": None}, None),
        ("application/xml", b"<a>1</a><b/>", {"raw_response": "<a>1</a><b/>"}, "ExpatError"),
        ("application/xml", b"", {"raw_response": ""}, None),
        ("text/html", b"<p>hi</p>", {"raw_response": "<p>hi</p>"}, None),
        (None, b"plain", {"raw_response": "plain"}, None),
    ],
)
def test_parse_body(content_type: str | None, content: bytes, body: Any, error_code: str | None) -> None:
    headers = [(b"Content-Type", content_type.encode())] if content_type else []
    parsed = parse_body(Response(200, headers=decode_headers(headers), content=content))
    assert (parsed.body, parsed.error_code, parsed.valid) == (body, error_code, error_code is None)


def test_response_headers_are_lower_cased_and_joined() -> None:
    raw = [(b"X-A", b"1"), (b"x-a", b"2"), (b"Content-Type", b"text/plain")]
    response = Response(200, headers=decode_headers(raw))
    assert response_headers(response) == {"x-a": "1, 2", "content-type": "text/plain"}
