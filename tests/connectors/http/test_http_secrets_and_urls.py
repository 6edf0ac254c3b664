"""Invalid URLs are rejected before any request; secrets never reach messages or logs."""

from __future__ import annotations

from typing import Any

import pytest

from spiff_connector_http.commands import get_request, post_request
from spiff_connector_http.urls import display_url, parse_url, redact
from spiff_connector_sdk import Context, Result

PASSWORD = "pa55-Secret-word"
TOKEN = "tok-Very-Secret-123"
QUERY_TOKEN = "qs-Secret-key-987"
HEADER_KEY = "hdr-Secret-api-key"
BODY_SECRET = "body-Secret-value"
SECRETS = (PASSWORD, TOKEN, QUERY_TOKEN, HEADER_KEY, BODY_SECRET, "userinfo-pw")


def assert_no_secrets(result: Result, ctx: Context) -> None:
    texts = [*ctx.logs]
    if result.error is not None:
        texts += [result.error.code, result.error.message]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {text!r}"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("", "MissingSchema"),
        ("   ", "MissingSchema"),
        ("/relative/path", "MissingSchema"),
        (f"example.com/x?token={QUERY_TOKEN}", "MissingSchema"),
        ("not a url", "InvalidURL"),
        ("http://", "InvalidURL"),
        ("https:///path-only", "InvalidURL"),
        ("http://[::1", "InvalidURL"),
        (f"http://*.example.com/?token={QUERY_TOKEN}", "InvalidURL"),
        ("http://a..b/", "LocationParseError"),
        ("ftp://127.0.0.1/file", "InvalidSchema"),
        ("file:///etc/passwd", "InvalidSchema"),
        ("javascript:alert(1)", "InvalidSchema"),
        (f"mailto:someone@example.com?token={QUERY_TOKEN}", "InvalidSchema"),
        (f"httpx://127.0.0.1/?token={QUERY_TOKEN}", "InvalidSchema"),
    ],
)
async def test_invalid_url_is_rejected_without_a_request(server: Any, url: str, code: str) -> None:
    ctx = Context()
    result = await get_request(ctx, url=url)
    assert result.http_status == 500
    assert result.body == {}
    assert result.error is not None
    assert result.error.code == code
    assert server.client_ports == []
    assert_no_secrets(result, ctx)
    assert QUERY_TOKEN not in result.error.message


@pytest.mark.parametrize("url", [12345, b"http://127.0.0.1:1/"])
async def test_a_url_that_is_not_a_string_is_read_as_requests_reads_it(url: Any) -> None:
    result = await get_request(Context(), url=url)
    assert result.error is not None
    assert result.error.code == ("MissingSchema" if isinstance(url, int) else "ConnectionError")


@pytest.mark.parametrize(
    "headers",
    [{"X-Api-Key": f" {HEADER_KEY}"}, {"X-Api-Key": f"{HEADER_KEY}\n"}, {"X-Api-Key": f"{HEADER_KEY}日本"}],
)
async def test_header_errors_have_no_values(server: Any, headers: dict[str, str]) -> None:
    ctx = Context()
    result = await get_request(ctx, url=server.url("/echo"), headers=headers)
    assert result.error is not None
    assert result.error.code in ("InvalidHeader", "UnicodeEncodeError")
    assert_no_secrets(result, ctx)


async def test_http_error_message_has_no_query_userinfo_or_credentials(server: Any) -> None:
    ctx = Context()
    base = server.url("/flaky/s?fail=9&code=503").replace("http://", "http://ada:userinfo-pw@")
    result = await post_request(
        ctx,
        url=f"{base}&token={QUERY_TOKEN}",
        params={"api_key": QUERY_TOKEN},
        headers={"X-Api-Key": HEADER_KEY},
        data={"secret": BODY_SECRET},
        bearer_token=TOKEN,
        attempts=2,
    )
    assert result.error is not None
    assert result.error.code == "HttpError503"
    assert f"POST {server.url('/flaky/s')} returned HTTP 503" in result.error.message
    assert "ada" not in result.error.message
    assert len(ctx.logs) == 2
    assert_no_secrets(result, ctx)


async def test_connection_error_message_has_no_secrets(closed_port: int) -> None:
    ctx = Context()
    result = await get_request(
        ctx,
        url=f"http://127.0.0.1:{closed_port}/x?token={QUERY_TOKEN}",
        basic_auth_username="ada",
        basic_auth_password=PASSWORD,
        headers={"X-Api-Key": HEADER_KEY},
    )
    assert result.error is not None
    assert result.error.code == "ConnectionError"
    assert_no_secrets(result, ctx)


async def test_timeout_message_has_no_secrets(server: Any) -> None:
    ctx = Context()
    result = await get_request(
        ctx, url=server.url(f"/slow?seconds=0.5&token={QUERY_TOKEN}"), bearer_token=TOKEN, timeout=0.1
    )
    assert result.error is not None
    assert result.error.code == "ReadTimeout"
    assert_no_secrets(result, ctx)


async def test_invalid_parameters_message_has_no_values(server: Any) -> None:
    ctx = Context()
    result = await post_request(
        ctx, url=server.url("/echo"), data={"nested": {"secret": BODY_SECRET}}, body_format="form", bearer_token=TOKEN
    )
    assert result.error is not None
    assert result.error.code == "InvalidParameters"
    assert_no_secrets(result, ctx)
    bad_params = await get_request(ctx, url=server.url("/echo"), params={"key": {"secret": QUERY_TOKEN}})
    assert bad_params.error is not None
    assert bad_params.error.code == "InvalidParameters"
    assert_no_secrets(bad_params, ctx)


def test_display_url_drops_userinfo_query_and_fragment() -> None:
    url = parse_url("https://user:pw@example.com:8443/a/b?token=x#frag")
    assert display_url(url) == "https://example.com:8443/a/b"
    assert display_url(parse_url("http://[::1]/p")) == "http://[::1]/p"


def test_redact_replaces_secrets_and_bounds_length() -> None:
    assert redact("refused for abc and abcdef", ["abc", "abcdef", ""]) == "refused for *** and ***"
    assert len(redact("x" * 1000, [])) == 203
