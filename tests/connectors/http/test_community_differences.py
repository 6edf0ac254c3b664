"""The deliberate differences from the community ``connector-http``, one test per row of the README's
"Differences from connector-http" table, each on the input the row names.

Where the community side can be observed, it is: :class:`conftest.CommunityConnector` runs its
request handling on real ``requests`` against the same local server.
"""

from __future__ import annotations

from typing import Any

import pytest

from spiff_connector_http import connector, execute
from spiff_connector_http.client import USER_AGENT
from spiff_connector_http.request import effective_timeout
from spiff_connector_sdk import Context, Result

LONG = 5.0  # seconds: a timeout the case never reaches


async def ours(command: str, ctx: Context | None = None, **params: Any) -> Result:
    result = await connector.commands[command].func(ctx or Context(), **params)
    assert isinstance(result, Result)
    return result


def code(result: Result) -> str | None:
    return result.error.code if result.error else None


@pytest.mark.parametrize(
    ("command", "path", "community_code", "body"),
    [
        ("HeadRequestV2", "/json", "JSONDecodeError", {}),
        ("GetRequestV2", "/empty-json", "JSONDecodeError", {}),
        ("DeleteRequestV2", "/as?type=application/json&status=204", "JSONDecodeError", {}),
        ("GetRequestV2", "/empty-xml", "ExpatError", {"raw_response": ""}),
    ],
)
async def test_an_empty_json_or_xml_body_is_no_error(
    community: Any, server: Any, command: str, path: str, community_code: str, body: Any
) -> None:
    expected = community(command, url=server.url(path))
    result = await ours(command, url=server.url(path))
    assert (expected.error_code, expected.http_status) == (community_code, result.http_status)
    assert (code(result), result.body) == (None, body)


@pytest.mark.parametrize(
    ("content_type", "text", "body"),
    [
        ("application/problem+json", '{"title": "gone"}', {"title": "gone"}),
        ("Application/JSON", "[1, 2]", [1, 2]),
        ("text/json", '{"a": 1}', {"a": 1}),
        ("application/atom+xml", "<feed><id>7</id></feed>", {"feed": {"id": "7"}}),
    ],
)
async def test_every_json_and_xml_content_type_is_parsed(
    community: Any, server: Any, content_type: str, text: str, body: Any
) -> None:
    url = server.url("/as")
    params = {"type": content_type, "body": text}
    expected = community("GetRequestV2", url=url, params=params)
    result = await ours("GetRequestV2", url=url, params=params)
    assert (expected.error_code, expected.body) == (None, {"raw_response": text})
    assert (code(result), result.body) == (None, body)


async def test_an_invalid_body_of_a_json_type_the_community_leaves_raw(community: Any, server: Any) -> None:
    params = {"type": "application/problem+json", "body": "{not json"}
    expected = community("GetRequestV2", url=server.url("/as"), params=params)
    result = await ours("GetRequestV2", url=server.url("/as"), params=params)
    assert expected.error_code is None
    assert (code(result), result.body) == ("JSONDecodeError", {"raw_response": "{not json"})


async def test_text_without_a_charset_is_read_as_utf_8(community: Any, server: Any) -> None:
    expected = community("GetRequestV2", url=server.url("/text-utf8"))
    result = await ours("GetRequestV2", url=server.url("/text-utf8"))
    assert expected.body == {"raw_response": "Grüße".encode().decode("latin-1")}
    assert result.body == {"raw_response": "Grüße"}


async def test_a_retry_that_succeeds_is_a_success(community: Any, server: Any) -> None:
    expected = community("GetRequestV2", url=server.url("/flaky-close/c?fail=1"), attempts=2)
    assert server.calls("/flaky-close/c") == 2
    server.reset()
    result = await ours("GetRequestV2", url=server.url("/flaky-close/o?fail=1"), attempts=2)
    assert server.calls("/flaky-close/o") == 2
    assert (expected.error_code, expected.http_status, expected.body) == ("ConnectionError", 200, {"ok": True})
    assert (code(result), result.http_status, result.body) == (None, 200, {"ok": True})


async def test_failures_a_retry_cannot_change_are_not_retried(community: Any, server: Any) -> None:
    expected = community("GetRequestV2", url=server.url("/loop"), attempts=2)
    community_calls = len(server.client_ports)
    server.reset()
    ctx = Context()
    result = await ours("GetRequestV2", ctx, url=server.url("/loop"), attempts=2)
    assert (expected.error_code, code(result)) == ("TooManyRedirects", "TooManyRedirects")
    assert (community_calls, len(server.client_ports)) == (62, 31)
    assert len(ctx.logs) == 1
    invalid = Context()
    assert code(await ours("GetRequestV2", invalid, url="ftp://127.0.0.1/", attempts=3)) == "InvalidSchema"
    assert len(invalid.logs) == 1


def test_the_pause_between_attempts_starts_at_a_tenth_of_a_second() -> None:
    assert [execute.backoff_delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_the_default_timeout_is_30_seconds() -> None:
    assert (effective_timeout(None), effective_timeout(1000)) == (30.0, 300.0)


async def test_an_answer_trickling_in_for_too_long_is_abandoned(community: Any, server: Any) -> None:
    """One byte every 0.05 s for 1 s: no read waits 0.3 s, but the attempt outlasts twice that."""
    expected = community("GetRequestV2", url=server.url("/trickle?seconds=1"), timeout=LONG)
    result = await ours("GetRequestV2", url=server.url("/trickle?seconds=1"), timeout=0.3)
    assert (expected.error_code, expected.http_status) == (None, 200)
    assert (code(result), result.http_status) == ("ConnectionError", 500)
    assert result.error is not None
    assert "no complete answer within 0.6 s" in result.error.message


async def test_chunked_encoding_that_breaks_after_the_first_chunk(community: Any, server: Any) -> None:
    """The invalid chunk comes 0.1 s after the first: well within either timeout."""
    expected = community("GetRequestV2", url=server.url("/chunks-broken-later"), timeout=LONG)
    result = await ours("GetRequestV2", url=server.url("/chunks-broken-later"), timeout=0.5)
    assert expected.error_code == "ChunkedEncodingError"
    assert (code(result), result.http_status, result.body) == ("ConnectionError", 500, {})


async def test_a_malformed_response_header_line_fails(community: Any, server: Any) -> None:
    expected = community("GetRequestV2", url=server.url("/bad-header-line"))
    result = await ours("GetRequestV2", url=server.url("/bad-header-line"))
    assert (expected.error_code, expected.http_status, expected.body) == (None, 200, {"raw_response": "ok"})
    assert (code(result), result.http_status) == ("ConnectionError", 500)


async def test_header_names_are_sent_in_lower_case(community: Any, server: Any) -> None:
    headers = {"X-Custom-Name": "v"}
    expected = community("GetRequestV2", url=server.url("/echo"), headers=headers)
    result = await ours("GetRequestV2", url=server.url("/echo"), headers=headers)
    assert "X-Custom-Name" in expected.body["header_names"]
    assert "x-custom-name" in result.body["header_names"]


async def test_latin_1_header_values_are_sent_as_utf_8(community: Any, server: Any) -> None:
    """The server reads header bytes as Latin-1, as HTTP/1.1 servers do."""
    headers = {"X-Name": "Zoë"}
    expected = community("GetRequestV2", url=server.url("/echo"), headers=headers)
    result = await ours("GetRequestV2", url=server.url("/echo"), headers=headers)
    assert expected.body["headers"]["x-name"] == "Zoë"
    assert result.body["headers"]["x-name"] == "Zoë".encode().decode("latin-1")


@pytest.mark.parametrize("value", ["nul\x00byte", "del\x7fbyte"])
async def test_control_characters_in_header_values_are_refused(community: Any, server: Any, value: str) -> None:
    expected = community("GetRequestV2", url=server.url("/json"), headers={"X-A": value})
    result = await ours("GetRequestV2", url=server.url("/json"), headers={"X-A": value})
    assert (expected.error_code, expected.http_status) == (None, 200)
    assert (code(result), result.http_status) == ("InvalidHeader", 500)


@pytest.mark.parametrize("command", ["PutRequestV2", "PatchRequestV2", "DeleteRequestV2"])
async def test_a_301_redirect_keeps_the_body(community: Any, server: Any, command: str) -> None:
    url = server.url("/redirect?to=/echo&code=301")
    expected = community(command, url=url, data={"a": 1})
    result = await ours(command, url=url, data={"a": 1})
    method = command.removesuffix("RequestV2").upper()
    assert (expected.body["method"], expected.body["body"]) == (method, "")
    assert (result.body["method"], result.body["body"]) == (method, '{"a": 1}')


@pytest.mark.parametrize(("data", "sent"), [([], "[]"), ("", '""'), (0, "0"), (False, "false")])
async def test_falsy_data_is_sent_as_given(community: Any, server: Any, data: Any, sent: str) -> None:
    expected = community("PostRequestV2", url=server.url("/echo"), data=data)
    result = await ours("PostRequestV2", url=server.url("/echo"), data=data)
    assert expected.body["body"] == "{}"
    assert result.body["body"] == sent


@pytest.mark.parametrize(
    ("params", "headers", "community_code", "community_query"),
    [
        ({"key": {"a": 1}}, None, None, "key=a"),
        ("a=1", None, None, "a=1"),
        (None, [["X-A", "1"]], "AttributeError", None),
        (None, "X-A: 1", "AttributeError", None),
    ],
)
async def test_parameters_of_the_wrong_shape_are_refused(
    community: Any, server: Any, params: Any, headers: Any, community_code: str | None, community_query: str | None
) -> None:
    expected = community("GetRequestV2", url=server.url("/echo"), params=params, headers=headers)
    result = await ours("GetRequestV2", url=server.url("/echo"), params=params, headers=headers)
    assert expected.error_code == community_code
    assert expected.body.get("raw_query") == community_query
    assert (code(result), result.http_status, result.body) == ("InvalidParameters", 500, {})


async def test_messages_hold_no_header_values_credentials_query_or_body(community: Any, server: Any) -> None:
    secret = "Secret-api-key-123"
    headers = {"X-Api-Key": f" {secret}"}
    expected = community("GetRequestV2", url=server.url("/echo"), headers=headers)
    result = await ours("GetRequestV2", url=server.url("/echo"), headers=headers)
    assert (expected.error_code, code(result)) == ("InvalidHeader", "InvalidHeader")
    assert expected.message is not None
    assert secret in expected.message
    assert result.error is not None
    assert secret not in result.error.message

    url = server.url(f"/status/404?token={secret}")
    expected = community("GetRequestV2", url=url)
    result = await ours("GetRequestV2", url=url)
    assert expected.message == 'Received Error: . Raw http_response was: {"status": 404}'
    assert result.error is not None
    assert result.error.message == f"GET {server.url('/status/404')} returned HTTP 404 Not Found"


async def test_logs_are_one_line_per_attempt(server: Any) -> None:
    ctx = Context()
    await ours("GetRequestV2", ctx, url=server.url("/json?token=secret"))
    assert ctx.logs == [f"GET {server.url('/json')} attempt 1/1 → 200"]


async def test_the_user_agent_names_this_connector(community: Any, server: Any) -> None:
    expected = community("GetRequestV2", url=server.url("/echo"))
    result = await ours("GetRequestV2", url=server.url("/echo"))
    assert expected.body["headers"]["user-agent"].startswith("python-requests/")
    assert result.body["headers"]["user-agent"] == USER_AGENT == "spiff-connector-http/0.1"


async def test_a_redirect_to_another_origin_drops_every_credential_header(community: Any, server: Any) -> None:
    elsewhere = "http://localhost:" + server.base.rsplit(":", 1)[1] + "/echo"  # the same server, another origin
    headers = {"X-Api-Key": "k-1", "Proxy-Authorization": "Basic cA==", "Authorization": "Bearer t"}
    expected = community("GetRequestV2", url=server.url(f"/redirect?to={elsewhere}"), headers=headers)
    result = await ours("GetRequestV2", url=server.url(f"/redirect?to={elsewhere}"), headers=headers)
    assert "x-api-key" in expected.body["headers"]  # requests drops only the two standard ones
    assert not {"authorization", "proxy-authorization"} & set(expected.body["headers"])
    assert not {"x-api-key", "proxy-authorization", "authorization"} & set(result.body["headers"])


async def test_a_query_too_long_to_send_is_invalid_url(server: Any) -> None:
    result = await ours("GetRequestV2", url=server.url("/echo"), params={"q": "x" * 70_000})
    assert (code(result), result.http_status) == ("InvalidURL", 500)
    assert server.client_ports == []


@pytest.mark.parametrize(
    ("name", "value"), [("attempts", "2"), ("attempts", 2.0), ("include_response_headers", 0), ("timeout", "30")]
)
def test_a_parameter_of_the_wrong_json_type_is_refused(client: Any, name: str, value: Any) -> None:
    """Through the proxy (the types are checked at dispatch): nothing is sent to the URL."""
    answer = client.post("/v1/do/http/GetRequestV2", json={"url": "http://127.0.0.1:9/never", name: value})
    assert answer.status_code == 400
    assert answer.json()["error"]["error_code"] == "invalid_parameter"
    assert name in answer.json()["error"]["message"]
