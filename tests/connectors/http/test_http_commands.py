"""The six commands against a real server: methods, headers, params, bodies, auth, redirects, client reuse."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from spiff_connector_http import connector
from spiff_connector_http.client import get_client, lifespan
from spiff_connector_sdk import Context, Result

METHODS = {
    "GetRequestV2": "GET",
    "HeadRequestV2": "HEAD",
    "PostRequestV2": "POST",
    "PutRequestV2": "PUT",
    "PatchRequestV2": "PATCH",
    "DeleteRequestV2": "DELETE",
}
WITH_BODY = ["PostRequestV2", "PutRequestV2", "PatchRequestV2", "DeleteRequestV2"]


async def call(command: str, ctx: Context | None = None, **params: Any) -> Result:
    result = await connector.commands[command].func(ctx or Context(), **params)
    assert isinstance(result, Result)
    return result


def test_connector_declares_the_six_commands() -> None:
    assert connector.name == "http"
    assert sorted(connector.commands) == sorted(METHODS)
    assert connector.lifespan is lifespan
    for spec in connector.commands.values():
        assert spec.description


@pytest.mark.parametrize(("command", "method"), METHODS.items())
async def test_each_command_sends_its_method(server: Any, command: str, method: str) -> None:
    result = await call(command, url=server.url("/echo"), include_response_headers=True)
    assert result.error is None
    assert result.http_status == 200
    assert result.mimetype == "application/json"
    assert result.headers is not None
    assert result.headers["x-echo"] == "yes"
    if method == "HEAD":
        assert result.body == {}
    else:
        assert result.body["method"] == method


async def test_headers_and_params_reach_the_server(server: Any) -> None:
    result = await call(
        "GetRequestV2",
        url=server.url("/echo?fixed=1"),
        headers={"X-Trace": "t-1", "Accept": "application/json"},
        params={"q": "a b", "n": 3, "tag": ["x", "y"]},
    )
    assert result.error is None
    assert result.body["headers"]["x-trace"] == "t-1"
    assert result.body["query"] == {"fixed": ["1"], "q": ["a b"], "n": ["3"], "tag": ["x", "y"]}


@pytest.mark.parametrize("command", WITH_BODY)
async def test_json_body_is_the_default(server: Any, command: str) -> None:
    data = {"name": "Ada", "tags": [1, 2], "nested": {"ok": True}}
    result = await call(command, url=server.url("/echo"), data=data)
    assert result.error is None
    assert json.loads(result.body["body"]) == data
    assert result.body["headers"]["content-type"] == "application/json"


async def test_form_body(server: Any) -> None:
    result = await call(
        "PostRequestV2", url=server.url("/echo"), data={"a": "1 2", "b": ["x", "y"], "n": 3}, body_format="form"
    )
    assert result.error is None
    assert result.body["body"] == "a=1+2&b=x&b=y&n=3"
    assert result.body["headers"]["content-type"] == "application/x-www-form-urlencoded"


async def test_raw_body(server: Any) -> None:
    result = await call(
        "PutRequestV2",
        url=server.url("/echo"),
        data="<doc>raw</doc>",
        body_format="raw",
        headers={"Content-Type": "application/xml"},
    )
    assert result.error is None
    assert result.body["body"] == "<doc>raw</doc>"
    assert result.body["headers"]["content-type"] == "application/xml"


async def test_no_data_sends_no_body(server: Any) -> None:
    result = await call("PostRequestV2", url=server.url("/echo"))
    assert result.body["body"] == ""
    assert "content-type" not in result.body["headers"]


@pytest.mark.parametrize(
    ("data", "body_format"),
    [({"a": {"nested": 1}}, "form"), ("a=1", "form"), ({"a": 1}, "raw"), (["x"], "raw")],
)
async def test_body_that_does_not_fit_the_format_is_rejected(
    server: Any, data: Any, body_format: str, ctx: Context
) -> None:
    result = await call("PostRequestV2", ctx, url=server.url("/echo"), data=data, body_format=body_format)
    assert result.error is not None
    assert result.error.code == "InvalidParameters"
    assert result.http_status == 400
    assert server.client_ports == []


async def test_basic_auth_reaches_the_server(server: Any) -> None:
    result = await call(
        "GetRequestV2", url=server.url("/echo"), basic_auth_username="ada", basic_auth_password="s3cr3t!"
    )
    expected = "Basic " + base64.b64encode(b"ada:s3cr3t!").decode()
    assert result.body["headers"]["authorization"] == expected


async def test_bearer_token_reaches_the_server_and_wins_over_a_header(server: Any) -> None:
    result = await call(
        "DeleteRequestV2",
        url=server.url("/echo"),
        headers={"authorization": "Basic old"},
        bearer_token="tok-123",
    )
    assert result.body["headers"]["authorization"] == "Bearer tok-123"


async def test_basic_auth_and_bearer_together_are_rejected(server: Any) -> None:
    result = await call(
        "GetRequestV2", url=server.url("/echo"), basic_auth_username="u", basic_auth_password="p", bearer_token="t"
    )
    assert result.error is not None
    assert result.error.code == "InvalidParameters"
    assert server.client_ports == []


async def test_response_headers_are_omitted_by_default(server: Any) -> None:
    result = await call("GetRequestV2", url=server.url("/json"))
    assert result.headers is None
    assert result.body == {"ok": True}


async def test_redirects_are_followed_except_for_head(server: Any) -> None:
    followed = await call("GetRequestV2", url=server.url("/redirect?to=/json"))
    assert (followed.http_status, followed.body) == (200, {"ok": True})
    posted = await call("PostRequestV2", url=server.url("/redirect?to=/json"), data={"a": 1})
    assert posted.http_status == 200
    head = await call("HeadRequestV2", url=server.url("/redirect?to=/json"), include_response_headers=True)
    assert head.http_status == 302
    assert head.headers is not None
    assert head.headers["location"] == "/json"
    assert head.error is None


async def test_cookies_are_not_kept_between_calls(server: Any) -> None:
    await call("GetRequestV2", url=server.url("/set-cookie"))
    result = await call("GetRequestV2", url=server.url("/echo"))
    assert "cookie" not in result.body["headers"]


async def test_one_client_and_one_connection_are_reused(server: Any) -> None:
    client = get_client()
    for _ in range(5):
        result = await call("GetRequestV2", url=server.url("/echo"))
        assert result.error is None
    assert get_client() is client
    assert len(server.client_ports) == 5
    assert len(set(server.client_ports)) == 1


async def test_lifespan_owns_the_shared_client(server: Any) -> None:
    async with lifespan():
        inside = get_client()
        assert get_client() is inside
        await call("GetRequestV2", url=server.url("/json"))
        await call("PostRequestV2", url=server.url("/json"))
        assert len(set(server.client_ports)) == 1
    assert inside.is_closed
    assert get_client() is not inside


async def test_redirect_loop_is_too_many_redirects(server: Any) -> None:
    result = await call("GetRequestV2", url=server.url("/loop"), attempts=3)
    assert result.http_status == 502
    assert result.error is not None
    assert result.error.code == "HttpTooManyRedirects"
    assert len(server.client_ports) == 21


@pytest.mark.parametrize("value", ["line\nbreak-Secret", "bad\r\nX-Injected: 1"])
async def test_invalid_header_value_is_rejected(server: Any, value: str) -> None:
    ctx = Context()
    result = await call("GetRequestV2", ctx, url=server.url("/echo"), headers={"X-Key": value}, attempts=3)
    assert result.error is not None
    assert result.error.code == "InvalidParameters"
    assert result.http_status == 400
    assert "Secret" not in result.error.message
    assert "Injected" not in result.error.message
    assert len(ctx.logs) == 1
    assert server.client_ports == []


async def test_non_ascii_header_value_is_rejected(server: Any) -> None:
    result = await call("GetRequestV2", url=server.url("/echo"), headers={"X-Name": "Zoë"})
    assert result.error is not None
    assert result.error.code == "InvalidParameters"
    assert server.client_ports == []
