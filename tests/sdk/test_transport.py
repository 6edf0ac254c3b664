"""``spiff_connector_sdk.transport``: httpx on aiohttp's connections, against raw servers on 127.0.0.1.

Every failure mode is produced by a real socket peer (refusing, closing, sending garbage, cutting a
body short, staying silent) and must surface as the httpx exception a caller of httpx expects.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import httpx
import pytest

from spiff_connector_sdk.transport import PooledTransport, pooled_transport, translate_error

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 running ``handler`` per connection; yields its base URL."""
    writers: set[asyncio.StreamWriter] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the client went away or gave up: expected in these tests
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in writers:  # handlers waiting on a read see the end of the stream and return
            writer.close()
        await asyncio.wait_for(server.wait_closed(), 5)


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """The request line, headers (lower-cased names) and body of one HTTP/1.1 request."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    line, *fields = head.decode("latin-1").split("\r\n")[:-2]
    headers = {name.strip().lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return line, headers, body


def answers(raw: bytes) -> Handler:
    """A peer that reads one request, writes ``raw`` (nothing: hangs up) and closes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw)
        await writer.drain()

    return handler


def response(status: int, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request with JSON describing it; ``/cookie`` also sets a cookie,
    ``/redirect`` answers 302 to ``/target``, ``/gzip`` answers a gzip-encoded body."""
    for _ in range(20):
        line, headers, body = await read_request(reader)
        path = line.split(" ")[1]
        described = json.dumps({"line": line, "headers": headers, "body": body.decode("latin-1")}).encode()
        if path == "/redirect":
            writer.write(response(302, b"", "Location: /target"))
        elif path == "/cookie":
            writer.write(response(200, described, "Set-Cookie: session=abc; Path=/"))
        elif path == "/gzip":
            writer.write(response(200, gzip.compress(described), "Content-Encoding: gzip"))
        else:
            writer.write(response(200, described, "Content-Type: application/json"))
        await writer.drain()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=pooled_transport(), timeout=5, trust_env=False) as c:
        yield c


async def test_requests_go_over_one_kept_alive_connection(client: httpx.AsyncClient) -> None:
    connections = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await echo(reader, writer)

    async with raw_server(counting) as base:
        for index in range(5):
            answer = await client.post(f"{base}/items?n={index}", json={"n": index})
            assert answer.status_code == 200
            seen = answer.json()
            assert seen["line"] == f"POST /items?n={index} HTTP/1.1"
            assert json.loads(seen["body"]) == {"n": index}
            assert seen["headers"]["content-type"] == "application/json"
    assert connections == 1


async def test_no_content_type_is_added_to_a_raw_body(client: httpx.AsyncClient) -> None:
    async with raw_server(echo) as base:
        seen = (await client.put(f"{base}/raw", content=b"plain bytes")).json()
    assert seen["body"] == "plain bytes"
    assert "content-type" not in seen["headers"]


async def test_url_credentials_become_basic_auth_and_leave_the_url(client: httpx.AsyncClient) -> None:
    async with raw_server(echo) as base:
        seen = (await client.get(base.replace("http://", "http://ada:pw@") + "/who")).json()
    assert seen["headers"]["authorization"] == "Basic YWRhOnB3"
    assert seen["line"] == "GET /who HTTP/1.1"


async def test_redirected_get_is_sent_without_a_body(client: httpx.AsyncClient) -> None:
    async with raw_server(echo) as base:
        answer = await client.get(f"{base}/redirect", follow_redirects=True)
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["line"] == "GET /target HTTP/1.1"
    assert "transfer-encoding" not in seen["headers"]
    assert seen["body"] == ""


async def test_cookies_are_httpx_s_decision_only(client: httpx.AsyncClient) -> None:
    async with raw_server(echo) as base:
        await client.get(f"{base}/cookie")
        assert client.cookies.get("session") == "abc"  # httpx's jar took it
        client.cookies.clear()
        seen = (await client.get(f"{base}/after")).json()
    assert "cookie" not in seen["headers"]  # aiohttp kept none of its own


async def test_gzip_bodies_are_decoded_once(client: httpx.AsyncClient) -> None:
    async with raw_server(echo) as base:
        answer = await client.get(f"{base}/gzip")
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.json()["line"] == "GET /gzip HTTP/1.1"


async def test_refused_connection_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_peer_closing_without_answer_is_a_remote_protocol_error(client: httpx.AsyncClient) -> None:
    async with raw_server(answers(b"")) as base:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{base}/")


async def test_garbage_answer_is_a_remote_protocol_error(client: httpx.AsyncClient) -> None:
    async with raw_server(answers(b"NOT HTTP AT ALL\r\n\r\n")) as base:
        with pytest.raises(httpx.RemoteProtocolError) as raised:
            await client.get(base.replace("http://", "http://ada:pw-in-url@") + "/?token=query-secret")
    assert "query-secret" not in str(raised.value) and "pw-in-url" not in str(raised.value)


async def test_body_cut_short_is_a_read_error(client: httpx.AsyncClient) -> None:
    async with raw_server(answers(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")) as base:
        with pytest.raises(httpx.ReadError):
            await client.get(f"{base}/")


async def test_silent_peer_is_a_read_timeout() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.wait_for(release.wait(), 5)

    client = httpx.AsyncClient(transport=pooled_transport(), timeout=0.2, trust_env=False)
    async with client, raw_server(silent) as base:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{base}/")
        release.set()


async def test_header_value_with_line_break_is_a_local_protocol_error(client: httpx.AsyncClient) -> None:
    async with raw_server(echo) as base:
        with pytest.raises(httpx.LocalProtocolError) as raised:
            await client.get(f"{base}/", headers={"X-Token": "secret-value\r\nX-Injected: 1"})
    assert "secret-value" not in str(raised.value)


async def test_connection_limit_queues_requests() -> None:
    connections = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await echo(reader, writer)

    transport = PooledTransport(limits=httpx.Limits(max_connections=2, keepalive_expiry=5))
    client = httpx.AsyncClient(transport=transport, timeout=5, trust_env=False)
    async with client, raw_server(counting) as base:
        answers = await asyncio.gather(*(client.get(f"{base}/{n}") for n in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert connections == 2


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (TimeoutError(), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), httpx.ReadError),
        (aiohttp.ClientConnectionResetError("reset"), httpx.ReadError),
        (aiohttp.InvalidURL("x"), httpx.UnsupportedProtocol),
        (aiohttp.NonHttpUrlClientError("ftp://x"), httpx.UnsupportedProtocol),
        (ValueError("bad\r\nheader"), httpx.LocalProtocolError),
        (aiohttp.ClientError("other"), httpx.TransportError),
    ],
)
def test_translate_error(raised: BaseException, expected: type[httpx.TransportError]) -> None:
    translated = translate_error(raised)
    assert type(translated) is expected
    wrapped = httpx.ConnectTimeout("as httpx-aiohttp maps it")
    wrapped.__cause__ = raised
    assert type(translate_error(wrapped)) is expected


def test_translate_error_keeps_plain_httpx_errors() -> None:
    error = httpx.ReadError("from httpx itself")
    assert translate_error(error) is error


def test_unacked_timeout_is_set_on_every_socket() -> None:
    """A pooled connection to a vanished peer fails after the unacknowledged-data timeout instead of
    hanging to the caller's deadline (seen with a killed pod behind a Service)."""
    import socket

    from spiff_connector_sdk.transport import unacked_socket_factory

    make = unacked_socket_factory(2.5)
    with make((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 0))) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 2500


async def test_the_transport_connects_through_its_socket_factory() -> None:
    import httpx

    from proxytest.servers import serve_in_thread
    from spiff_connector_sdk.transport import pooled_transport

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        assert scope["type"] in ("http", "lifespan")
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    with serve_in_thread(app) as url:
        async with httpx.AsyncClient(transport=pooled_transport(unacked_timeout=3)) as client:
            assert (await client.get(url)).text == "ok"
