"""The six commands against a real server: methods, headers, params, bodies, auth, redirects, client reuse."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

import pytest
from pydantic import ValidationError

from spiff_connector_http import client as client_module
from spiff_connector_http import connector
from spiff_connector_http.client import get_client, lifespan
from spiff_connector_http.settings import PoolSettings
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


@pytest.mark.parametrize("command", ["PostRequestV2", "PutRequestV2", "PatchRequestV2"])
async def test_no_data_sends_an_empty_json_object(server: Any, command: str) -> None:
    """As the community commands do (their ``data or {}``)."""
    result = await call(command, url=server.url("/echo"))
    assert result.body["body"] == "{}"
    assert result.body["headers"]["content-type"] == "application/json"


async def test_delete_without_data_sends_no_body(server: Any) -> None:
    result = await call("DeleteRequestV2", url=server.url("/echo"))
    assert result.body["body"] == ""
    assert "content-type" not in result.body["headers"]


@pytest.mark.parametrize("body_format", ["form", "raw"])
async def test_no_data_in_form_or_raw_sends_no_body(server: Any, body_format: str) -> None:
    result = await call("PostRequestV2", url=server.url("/echo"), body_format=body_format)
    assert result.body["body"] == ""


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
    assert result.http_status == 500
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
    assert result.http_status == 500
    assert result.error is not None
    assert result.error.code == "TooManyRedirects"
    assert len(server.client_ports) == 31  # not retried


@pytest.mark.parametrize("value", ["line\nbreak-Secret", "bad\r\nX-Injected: 1"])
async def test_invalid_header_value_is_rejected(server: Any, value: str) -> None:
    ctx = Context()
    result = await call("GetRequestV2", ctx, url=server.url("/echo"), headers={"X-Key": value}, attempts=3)
    assert result.error is not None
    assert result.error.code == "InvalidHeader"
    assert result.http_status == 500
    assert "Secret" not in result.error.message
    assert "Injected" not in result.error.message
    assert len(ctx.logs) == 1
    assert server.client_ports == []


async def test_latin_1_header_value_is_sent_as_utf_8(server: Any) -> None:
    result = await call("GetRequestV2", url=server.url("/echo"), headers={"X-Name": "Zoë"})
    assert result.error is None
    assert result.body["headers"]["x-name"].encode("latin-1").decode("utf-8") == "Zoë"


async def test_header_value_outside_latin_1_is_rejected(server: Any) -> None:
    result = await call("GetRequestV2", url=server.url("/echo"), headers={"X-Name": "日本-Secret"})
    assert result.error is not None
    assert result.error.code == "UnicodeEncodeError"
    assert "Secret" not in result.error.message
    assert server.client_ports == []


async def test_basic_auth_needs_both_username_and_password(server: Any) -> None:
    only_user = await call("GetRequestV2", url=server.url("/echo"), basic_auth_username="ada")
    assert "authorization" not in only_user.body["headers"]
    only_password = await call("GetRequestV2", url=server.url("/echo"), basic_auth_password="pw")
    assert "authorization" not in only_password.body["headers"]
    empty_password = await call(
        "GetRequestV2", url=server.url("/echo"), basic_auth_username="ada", basic_auth_password=""
    )
    assert empty_password.body["headers"]["authorization"] == "Basic " + base64.b64encode(b"ada:").decode()


async def test_bearer_token_with_a_username_alone_is_not_a_conflict(server: Any) -> None:
    result = await call("GetRequestV2", url=server.url("/echo"), basic_auth_username="ada", bearer_token="tok")
    assert result.body["headers"]["authorization"] == "Bearer tok"


async def test_explicit_credentials_win_over_the_url_userinfo(server: Any) -> None:
    url = server.url("/echo").replace("http://", "http://url-user:url-pw@")
    from_url = await call("GetRequestV2", url=url)
    assert from_url.body["headers"]["authorization"] == "Basic " + base64.b64encode(b"url-user:url-pw").decode()
    bearer = await call("GetRequestV2", url=url, bearer_token="tok")
    assert bearer.body["headers"]["authorization"] == "Bearer tok"


@pytest.mark.parametrize(
    ("token", "code"), [("line\nbreak", "InvalidHeader"), ("日本", "UnicodeEncodeError"), (7, "InvalidParameters")]
)
async def test_bearer_token_that_cannot_be_sent(server: Any, token: Any, code: str) -> None:
    result = await call("GetRequestV2", url=server.url("/echo"), bearer_token=token)
    assert result.error is not None
    assert result.error.code == code
    assert server.client_ports == []


@pytest.mark.parametrize("headers", ["X-A: 1", ["X-A", "1"]])
async def test_headers_that_are_not_an_object_are_rejected(server: Any, headers: Any) -> None:
    result = await call("GetRequestV2", url=server.url("/echo"), headers=headers)
    assert result.error is not None
    assert result.error.code == "InvalidParameters"
    assert server.client_ports == []


async def test_unknown_body_format_is_rejected(server: Any) -> None:
    result = await call("PostRequestV2", url=server.url("/echo"), data={"a": 1}, body_format="xml")
    assert result.error is not None
    assert result.error.code == "InvalidParameters"
    assert server.client_ports == []


CREDENTIALS = {
    "X-Api-Key": "k-123",
    "Proxy-Authorization": "Basic cHJveHk=",
    "Authorization": "Bearer t-456",
    "X-Auth-Token": "t-789",
    "Cookie": "session=s",
}


async def test_a_redirect_to_another_origin_drops_every_credential_header(server: Any) -> None:
    port = server.base.rsplit(":", 1)[1]
    elsewhere = f"http://localhost:{port}/echo"  # the same server under another origin
    result = await call(
        "GetRequestV2", url=server.url(f"/redirect?to={elsewhere}"), headers={**CREDENTIALS, "X-Trace": "kept"}
    )
    assert result.http_status == 200
    received = result.body["headers"]
    assert received["x-trace"] == "kept"
    assert not {name.lower() for name in CREDENTIALS} & set(received)


async def test_a_redirect_within_the_origin_keeps_them(server: Any) -> None:
    result = await call("GetRequestV2", url=server.url("/redirect?to=/echo"), headers=CREDENTIALS)
    received = result.body["headers"]
    assert {name.lower() for name in CREDENTIALS} - {"cookie"} <= set(received)


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/as?type=application/json&body=%22" + "x" * 3000 + "%22", "2000"),
        ("/gzip-big?size=50000000", "1000000"),  # about 50 KB on the wire: the decoded size counts
    ],
)
async def test_a_response_beyond_the_limit_is_not_read_further(server: Any, path: str, limit: str) -> None:
    ctx = Context(config={"HTTP_MAX_RESPONSE_BYTES": limit})
    result = await call("GetRequestV2", ctx, url=server.url(path), attempts=3)
    assert result.error is not None
    assert (result.error.code, result.http_status, result.body) == ("ResponseTooLarge", 200, {})
    assert f"{limit} bytes" in result.error.message
    assert len(server.client_ports) == 1  # not retried


async def test_a_response_within_the_limit_is_whole(server: Any) -> None:
    ctx = Context(config={"HTTP_MAX_RESPONSE_BYTES": 2000})
    result = await call("GetRequestV2", ctx, url=server.url("/gzip-big?size=1500"))
    assert (result.error, result.body) == (None, "0" * 1500)


async def test_calls_hanging_on_one_host_leave_the_pool_to_the_others(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    hanging = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    monkeypatch.setenv("CONNECTOR_HTTP_MAX_CONNECTIONS", "6")
    monkeypatch.setenv("CONNECTOR_HTTP_MAX_CONNECTIONS_PER_HOST", "2")
    await client_module.aclose_loop_client()  # a client with those limits
    try:
        stuck_url = f"http://127.0.0.1:{hanging.sockets[0].getsockname()[1]}/"
        stuck = [asyncio.create_task(call("GetRequestV2", url=stuck_url, timeout=3)) for _ in range(8)]
        await asyncio.sleep(0.3)
        healthy = await call("GetRequestV2", url=server.url("/json"), timeout=1)
        assert (healthy.error, healthy.body) == (None, {"ok": True})
        assert not any(task.done() for task in stuck)  # answered while the pool's other calls hang
        results = await asyncio.gather(*stuck)
        assert {r.error.code for r in results if r.error} <= {"ReadTimeout", "ConnectTimeout"}
    finally:
        for writer in held:
            writer.close()
        hanging.close()
        await hanging.wait_closed()


@pytest.mark.parametrize(("per_host", "expected"), [(None, 120), ("5", 5)])
async def test_a_slow_hosts_calls_run_side_by_side_up_to_the_per_host_limit(
    per_host: str | None, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default 120 calls to one slow host are all in flight at once (they used to queue behind 50
    connections); CONNECTOR_HTTP_MAX_CONNECTIONS_PER_HOST bounds them."""
    calls = 120
    if per_host is not None:
        monkeypatch.setenv("CONNECTOR_HTTP_MAX_CONNECTIONS_PER_HOST", per_host)
    open_now = peak = 0
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):  # the client closed it
            while await reader.readuntil(b"\r\n\r\n"):
                open_now += 1
                peak = max(peak, open_now)
                if peak >= expected:
                    release.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(release.wait(), 10)
                open_now -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()

    upstream = await asyncio.start_server(slow, "127.0.0.1", 0)
    await client_module.aclose_loop_client()  # a client with the limits set here
    try:
        url = f"http://127.0.0.1:{upstream.sockets[0].getsockname()[1]}/"
        results = await asyncio.gather(*(call("GetRequestV2", url=url, timeout=30) for _ in range(calls)))
    finally:
        upstream.close()
        await client_module.aclose_loop_client()
    assert [r.error for r in results] == [None] * calls
    assert peak == expected


def test_pool_limits_are_checked_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PoolSettings().model_dump() == {
        "max_connections": 512,
        "max_connections_per_host": 256,
        "max_keepalive_connections": 64,
        "keepalive_expiry": 30.0,
    }
    monkeypatch.setenv("CONNECTOR_HTTP_MAX_CONNECTIONS", "100")
    with pytest.raises(ValidationError, match="CONNECTOR_HTTP_MAX_CONNECTIONS_PER_HOST exceeds"):
        PoolSettings()
