"""Same input, same outcome as the community ``connector-http``.

Each case runs the community connector's request handling on real ``requests``
(:class:`conftest.CommunityConnector`) and this connector against the same input (the same local
server route, bad URL, bad header, ...) and compares ``error_code``, ``http_status`` and ``body``,
so an error boundary written for one catches the same failures with the other. The deliberate
differences are in ``test_community_differences.py`` and the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any

import pytest

from spiff_connector_http import connector, execute
from spiff_connector_sdk import Context, Result

SHORT = 0.2  # seconds: the timeout of the cases that wait for one


class Env:
    """The fixtures a case needs, created only when the case asks for them."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return self._request.getfixturevalue(name)

    def url(self, path: str) -> str:
        return str(self.server.url(path))


async def ours(command: str, wait: float | None = None, **params: Any) -> Result:
    if wait is not None:
        params["timeout"] = wait
    result = await connector.commands[command].func(Context(), **params)
    assert isinstance(result, Result)
    return result


async def assert_same(community: Any, command: str, params: dict[str, Any], wait: float | None = None) -> Result:
    """Run both on ``params``; their error code, status and body must be equal. Returns ours."""
    expected = community(command, **params, **({"timeout": wait} if wait else {}))
    result = await ours(command, wait, **params)
    got = (result.error.code if result.error else None, result.http_status, result.body)
    assert got == (expected.error_code, expected.http_status, expected.body)
    return result


Case = tuple[str, str, Callable[[Env], dict[str, Any]], float | None]

FAILURES: list[Case] = [
    ("refused", "GetRequestV2", lambda e: {"url": f"http://127.0.0.1:{e.closed_port}/x"}, None),
    ("closed-before-answer", "GetRequestV2", lambda e: {"url": e.url("/close")}, None),
    ("reset-before-answer", "DeleteRequestV2", lambda e: {"url": e.url("/reset")}, None),
    ("not-http", "GetRequestV2", lambda e: {"url": e.url("/garbage")}, None),
    ("body-shorter-than-content-length", "GetRequestV2", lambda e: {"url": e.url("/short")}, None),
    ("invalid-first-chunk", "GetRequestV2", lambda e: {"url": e.url("/chunks-broken")}, None),
    ("broken-gzip", "GetRequestV2", lambda e: {"url": e.url("/gzip-broken")}, None),
    ("no-answer-in-time", "GetRequestV2", lambda e: {"url": e.url("/slow?seconds=1")}, SHORT),
    ("body-stalls", "GetRequestV2", lambda e: {"url": e.url("/stall-body?seconds=1")}, SHORT),
    ("connect-timeout", "GetRequestV2", lambda e: {"url": f"http://127.0.0.1:{e.full_backlog_port}/"}, SHORT),
    (
        "upload-never-read",
        "PutRequestV2",
        lambda e: {"url": f"http://127.0.0.1:{e.deaf_port}/", "data": {"blob": "x" * 12_000_000}},
        SHORT,
    ),
    ("untrusted-certificate", "GetRequestV2", lambda e: {"url": e.tls_server.url("/json")}, None),
    ("tls-to-plain-http", "GetRequestV2", lambda e: {"url": e.url("/json").replace("http:", "https:")}, None),
    ("redirect-loop", "GetRequestV2", lambda e: {"url": e.url("/loop")}, None),
    ("json-that-does-not-parse", "GetRequestV2", lambda e: {"url": e.url("/bad-json")}, None),
    ("json-that-does-not-parse-on-500", "GetRequestV2", lambda e: {"url": e.url("/bad-json?status=500")}, None),
    ("xml-that-does-not-parse", "GetRequestV2", lambda e: {"url": e.url("/bad-xml")}, None),
    ("http-404", "GetRequestV2", lambda e: {"url": e.url("/status/404")}, None),
    ("http-503-retried", "GetRequestV2", lambda e: {"url": e.url("/status/503"), "attempts": 2}, None),
    ("http-500-post", "PostRequestV2", lambda e: {"url": e.url("/status/500"), "data": {"a": 1}}, None),
    ("http-409-patch", "PatchRequestV2", lambda e: {"url": e.url("/status/409")}, None),
    (
        "basic-auth-outside-latin-1",
        "GetRequestV2",
        lambda e: {"url": e.url("/echo"), "basic_auth_username": "日本", "basic_auth_password": "pw"},
        None,
    ),
    ("nan-in-json-data", "PostRequestV2", lambda e: {"url": e.url("/echo"), "data": {"x": math.nan}}, None),
]


@pytest.mark.parametrize(("command", "build", "wait"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES])
async def test_failures_have_the_community_outcome(
    community: Any, request: pytest.FixtureRequest, command: str, build: Any, wait: float | None
) -> None:
    result = await assert_same(community, command, build(Env(request)), wait)
    assert result.error is not None


SUCCESSES: list[Case] = [
    ("json", "GetRequestV2", lambda e: {"url": e.url("/json")}, None),
    ("text", "GetRequestV2", lambda e: {"url": e.url("/text")}, None),
    ("xml", "GetRequestV2", lambda e: {"url": e.url("/xml")}, None),
    ("empty-text", "GetRequestV2", lambda e: {"url": e.url("/empty")}, None),
    ("no-content", "DeleteRequestV2", lambda e: {"url": e.url("/empty?status=204")}, None),
    ("head-text", "HeadRequestV2", lambda e: {"url": e.url("/text")}, None),
    ("head-redirect-not-followed", "HeadRequestV2", lambda e: {"url": e.url("/redirect?to=/json")}, None),
    ("get-redirect-followed", "GetRequestV2", lambda e: {"url": e.url("/redirect?to=/json")}, None),
    ("post-303-becomes-get", "PostRequestV2", lambda e: {"url": e.url("/redirect?to=/json&code=303")}, None),
    ("put-json", "PutRequestV2", lambda e: {"url": e.url("/json"), "data": {"a": [1, 2]}}, None),
    (
        "basic-auth-without-password",
        "GetRequestV2",
        lambda e: {"url": e.url("/json"), "basic_auth_username": "u"},
        None,
    ),
    ("header-with-null-value", "GetRequestV2", lambda e: {"url": e.url("/json"), "headers": {"X-A": None}}, None),
    ("header-with-trailing-space", "GetRequestV2", lambda e: {"url": e.url("/json"), "headers": {"X-A": "v "}}, None),
    ("header-with-empty-value", "GetRequestV2", lambda e: {"url": e.url("/json"), "headers": {"X-A": ""}}, None),
    ("header-with-latin-1-value", "GetRequestV2", lambda e: {"url": e.url("/json"), "headers": {"X-A": "Zoë"}}, None),
    ("url-with-leading-spaces", "GetRequestV2", lambda e: {"url": "  " + e.url("/json")}, None),
    ("url-with-upper-case-scheme", "GetRequestV2", lambda e: {"url": e.url("/json").replace("http", "HTTP")}, None),
]


@pytest.mark.parametrize(("command", "build", "wait"), [c[1:] for c in SUCCESSES], ids=[c[0] for c in SUCCESSES])
async def test_answers_have_the_community_outcome(
    community: Any, request: pytest.FixtureRequest, command: str, build: Any, wait: float | None
) -> None:
    await assert_same(community, command, build(Env(request)), wait)


URLS = [
    "",
    "   ",
    "not a url",
    "/relative/path",
    "example.com/x",
    "localhost:8080/x",
    "//127.0.0.1:{closed}/x",
    "ftp://127.0.0.1/file",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "mailto:someone@example.com",
    "httpx://127.0.0.1/",
    "http://",
    "https:///path-only",
    "http:/x",
    "http:host",
    "http://[::1",
    "http://host:abc/",
    "http://host:99999/",
    "http://exa mple.com/",
    "http:// 127.0.0.1/",
    "http://x\ny/",
    "http://%zz/",
    "http://*.example.com/",
    "http://.example.com/",
    "http://☃.net/",
    "http://a..b/",
    "http\\://x",
    "HTTP://127.0.0.1:{closed}/",
    "  http://127.0.0.1:{closed}/",
    "http://user:pw@127.0.0.1:{closed}/",
    "http://127.0.0.1:{closed}/path ",
    "http://[::1]:{closed}/",
]


@pytest.mark.parametrize("url", URLS)
async def test_urls_fail_with_the_community_code(community: Any, closed_port: int, url: str) -> None:
    """None of these reaches a server: each is invalid or points at a closed port on the loopback."""
    await assert_same(community, "GetRequestV2", {"url": url.replace("{closed}", str(closed_port))})


HEADERS = [
    {"X-A": " leading space"},
    {"X-A": "\tleading tab"},
    {"X-A": "line\nbreak"},
    {"X-A": "carriage\rreturn"},
    {"X-A": 1},
    {"X-A": True},
    {"X-A": {"nested": "object"}},
    {" X-A": "v"},
    {"X:A": "v"},
    {"": "v"},
    {"X\nA": "v"},
    {"X-A": "日本"},
    {"X-Ä": "v"},
    {"X-Ok": "v", "X-A": " invalid wins over"},
]


@pytest.mark.parametrize("headers", HEADERS, ids=repr)
async def test_invalid_headers_fail_with_the_community_code(
    community: Any, server: Any, headers: dict[str, Any]
) -> None:
    result = await assert_same(community, "GetRequestV2", {"url": server.url("/echo"), "headers": headers})
    assert result.error is not None
    assert server.client_ports == []


async def test_the_upstream_sees_the_same_request(community: Any, server: Any) -> None:
    """Method, query string (params appended to the URL's own, as requests encodes them), body bytes,
    Content-Type and Authorization are the same."""
    cases: list[tuple[str, dict[str, Any]]] = [
        ("GetRequestV2", {"params": {"q": "a b&c=d", "n": 3, "t": True, "f": 1.5, "none": None, "tag": ["x", "é"]}}),
        ("GetRequestV2", {"url": server.url("/echo?q=1&keep=yes"), "params": {"q": "2"}}),
        ("GetRequestV2", {"params": {"q": "1"}, "basic_auth_username": "ada", "basic_auth_password": "pässword"}),
        ("PostRequestV2", {}),
        ("PutRequestV2", {"data": {"name": "Zoë", "list": [1, 2.5, None, True]}}),
        ("PatchRequestV2", {"data": "just a string", "headers": {"Content-Type": "text/plain"}}),
        ("DeleteRequestV2", {}),
        ("DeleteRequestV2", {"data": [], "params": {"id": "7"}}),
        ("GetRequestV2", {"url": server.url("/echo").replace("http://", "http://u:p@")}),
        (
            "GetRequestV2",
            {
                "url": server.url("/echo").replace("http://", "http://u:p@"),
                "basic_auth_username": "a",
                "basic_auth_password": "b",
            },
        ),
    ]

    def seen(echo: Any) -> Any:
        headers = echo["headers"]
        return (
            echo["method"],
            echo["raw_query"],
            echo["body"],
            headers.get("content-type"),
            headers.get("authorization"),
        )

    for command, params in cases:
        params = {"url": server.url("/echo"), **params}
        expected = community(command, **params)
        result = await ours(command, **params)
        assert (result.error, result.http_status) == (None, expected.http_status)
        assert seen(result.body) == seen(expected.body), (command, params)


async def test_head_sends_the_same_request(community: Any, server: Any) -> None:
    """HEAD answers carry no body: compare what /echo saw through a GET of the same request."""
    params = {
        "url": server.url("/echo"),
        "params": {"q": "1"},
        "basic_auth_username": "ada",
        "basic_auth_password": "p",
    }
    expected = community("GetRequestV2", **params)
    result = await ours("GetRequestV2", **params)
    assert result.body["headers"]["authorization"] == expected.body["headers"]["authorization"]
    assert (await ours("HeadRequestV2", **params)).http_status == community("HeadRequestV2", **params).http_status


@pytest.mark.parametrize("status", [302, 303])
async def test_a_302_or_303_redirect_of_a_put_is_a_get_without_body(community: Any, server: Any, status: int) -> None:
    url = server.url(f"/redirect?to=/echo&code={status}")
    expected = community("PutRequestV2", url=url, data={"a": 1})
    result = await ours("PutRequestV2", url=url, data={"a": 1})
    assert (expected.body["method"], expected.body["body"]) == ("GET", "")
    assert (result.body["method"], result.body["body"]) == ("GET", "")


async def test_redirect_limit_is_the_same(community: Any, server: Any) -> None:
    expected = community("GetRequestV2", url=server.url("/loop"))
    community_calls = len(server.client_ports)
    server.reset()
    result = await ours("GetRequestV2", url=server.url("/loop"))
    assert result.error is not None
    assert (result.error.code, expected.error_code) == ("TooManyRedirects", "TooManyRedirects")
    assert len(server.client_ports) == community_calls == 31


@pytest.mark.parametrize("attempts", [None, 1, 3, 10, 11, 0, -1, "2", 2.0, True, False])
async def test_attempts_are_counted_the_same(
    community: Any, server: Any, attempts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execute, "BACKOFF_INITIAL", 0.001)
    monkeypatch.setattr(execute, "BACKOFF_MAX", 0.001)
    key = f"/flaky/attempts-{attempts!r}"
    expected = community("GetRequestV2", url=server.url(f"{key}?fail=99&code=503"), attempts=attempts)
    community_calls = server.calls(key)
    server.reset()
    result = await ours("GetRequestV2", url=server.url(f"{key}?fail=99&code=503"), attempts=attempts)
    assert server.calls(key) == community_calls
    assert (result.error.code if result.error else None, result.http_status) == (
        expected.error_code,
        expected.http_status,
    )


async def test_requests_go_through_the_environment_proxy(
    community: Any, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local server answers the proxy's absolute-URI requests itself: the name is never resolved."""
    monkeypatch.setenv("HTTP_PROXY", server.base)
    expected = community("GetRequestV2", url="http://proxied.test/echo?q=1")
    result = await ours("GetRequestV2", url="http://proxied.test/echo?q=1")
    assert (result.error, result.http_status) == (None, expected.http_status) == (None, 200)
    assert result.body["headers"]["host"] == expected.body["headers"]["host"] == "proxied.test"
    assert result.body["raw_query"] == expected.body["raw_query"] == "q=1"


@pytest.mark.parametrize("url", ["http://proxied.test/x", "https://proxied.test/x"])
async def test_an_unreachable_proxy_is_a_proxy_error(
    community: Any, closed_port: int, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port}")
    result = await assert_same(community, "GetRequestV2", {"url": url})
    assert result.error is not None
    assert result.error.code == "ProxyError"


async def test_no_proxy_hosts_are_reached_directly(
    community: Any, server: Any, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    await assert_same(community, "GetRequestV2", {"url": server.url("/json")})


async def test_a_json_body_nested_too_deep_is_a_recursion_error(community: Any, server: Any) -> None:
    deep = "[" * 1_100 + "]" * 1_100  # beyond the parser's depth, well within a URL
    url = server.url(f"/as?type=application/json&body={deep}")
    result = await assert_same(community, "GetRequestV2", {"url": url})
    assert result.error is not None and result.error.code == "RecursionError"


async def test_https_goes_through_the_environment_proxy_in_a_tunnel(
    tls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HTTPS_PROXY``: the connector asks the proxy for a tunnel (``CONNECT host:443``) and speaks
    TLS to the upstream through it, so the upstream's certificate is checked end to end (here a
    self-signed one: SSLError, as ``requests`` reports it). A real tunnelling proxy on 127.0.0.1
    takes every CONNECT to the test's TLS server: the name is never resolved."""
    upstream_port = int(tls_server.base.rsplit(":", 1)[1])
    asked: list[bytes] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def tunnel(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        head = await client_reader.readuntil(b"\r\n\r\n")
        asked.append(head.split(b"\r\n", 1)[0])
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        client_writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await client_writer.drain()
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    proxy = await asyncio.start_server(tunnel, "127.0.0.1", 0)
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
        result = await ours("GetRequestV2", url="https://secure.test/json")
    finally:
        proxy.close()
    assert asked == [b"CONNECT secure.test:443 HTTP/1.1"]
    assert result.error is not None and result.error.code == "SSLError"
