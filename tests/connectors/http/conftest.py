"""Fixtures for the HTTP connector tests: a real HTTP/1.1 server on 127.0.0.1.

Routes (any method unless noted):

- ``/echo``: JSON with the method, path, query, headers, body and client port;
- ``/json``: ``{"ok": true}``; ``/text``: ``hello``; ``/xml``: a small XML document;
- ``/empty-json`` / ``/empty``: empty body with a JSON / text content type;
- ``/bad-json`` / ``/bad-xml``: bodies that do not parse;
- ``/status/<code>``: answers ``<code>`` with a JSON body;
- ``/flaky/<key>?fail=N&code=C``: the first N calls answer C, then 200 with the attempt number;
- ``/slow?seconds=S``: sleeps S seconds before answering;
- ``/redirect?to=<path>&code=<code>``: ``<code>`` (302 unless given) to ``<path>``;
- ``/loop``: redirects to itself;
- ``/set-cookie``: sets a cookie;
- ``/text-utf8``: UTF-8 text with a ``text/plain`` content type and no charset;
- ``/empty-xml``: empty body with an XML content type;
- ``/as?type=T&body=B&status=S``: ``B`` with content type ``T`` (none if not given) and status ``S`` (200);
- ``/trickle?seconds=S``: a body that arrives one byte every 0.05 s for S seconds;

and broken answers, each on a connection closed afterwards:

- ``/close``: closes the connection without answering; ``/reset``: resets it (RST);
- ``/flaky-close/<key>?fail=N``: the first N calls close without answering, then 200;
- ``/garbage``: not HTTP; ``/bad-header-line``: a response header line without a colon;
- ``/short``: a body shorter than its Content-Length;
- ``/chunks-broken``: an invalid first chunk; ``/chunks-broken-later``: one valid chunk, a pause, an invalid one;
- ``/gzip-broken``: ``Content-Encoding: gzip`` on a body that is not gzip;
- ``/gzip-big?size=N``: N zero bytes of JSON string, gzip-compressed (a small body that decodes large);
- ``/stall-body?seconds=S``: the headers and part of the body, then nothing for S seconds.

Fixtures for failures without an answer: ``closed_port`` (connections refused),
``full_backlog_port`` (connections never complete: connect timeouts), ``deaf_port``
(connections accepted but never read: a large upload stalls), ``tls_server`` (HTTPS with a
self-signed certificate).
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import xmltodict

from proxytest.servers import silent_port
from proxytest.tls import self_signed_certificate
from spiff_connector_http.client import aclose_loop_client
from spiff_connector_sdk import Context

MAX_SLOW_SECONDS = 2.0


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.client_ports: list[int] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that gave up (timeouts) make writes fail; that is expected here."""

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:  # the handshake runs in the handler's thread, on its first read
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def count(self, key: str) -> int:
        with self.lock:
            self.counters[key] += 1
            return self.counters[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 5
    server: RecordingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str | None, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", extra)

    def _raw(self, data: bytes) -> None:
        """Write ``data`` as the whole answer and close the connection."""
        self.close_connection = True
        if data:
            self.wfile.write(data)
            self.wfile.flush()

    def _trickle(self, seconds: float) -> None:
        """A 200 whose body arrives one byte every 0.05 s for ``seconds``."""
        count = max(1, int(seconds / 0.05))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(count))
        self.end_headers()
        for _ in range(count):
            self.wfile.write(b".")
            self.wfile.flush()
            time.sleep(0.05)

    def _broken(self, path: str, first: dict[str, str]) -> bool:
        """The broken answers (see the module docstring); False for any other path."""
        if path == "/close":
            self._raw(b"")
        elif path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._raw(b"")
        elif path.startswith("/flaky-close/"):
            if self.server.count(path) <= int(first.get("fail", "1")):
                self._raw(b"")
            else:
                self._json(200, {"ok": True})
        elif path == "/garbage":
            self._raw(b"HELLO WORLD\r\n\r\n")
        elif path == "/bad-header-line":
            self._raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nNot A Header Line\r\n\r\nok")
        elif path == "/short":
            self._raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc")
        elif path == "/chunks-broken":
            self._raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
        elif path == "/chunks-broken-later":
            self._raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            time.sleep(0.1)
            self._raw(b"zz\r\nabc\r\n")
        elif path == "/gzip-big":
            packed = gzip.compress(b'"' + b"0" * int(first.get("size", "1000")) + b'"')
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            head += f"Content-Length: {len(packed)}\r\n\r\n"
            self._raw(head.encode() + packed)
        elif path == "/gzip-broken":
            self._raw(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 8\r\n\r\nnot gzip")
        elif path == "/stall-body":
            self._raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nab")
            time.sleep(min(float(first.get("seconds", "1")), MAX_SLOW_SECONDS))
        else:
            return False
        return True

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.client_ports.append(self.client_address[1])
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        first = {k: v[0] for k, v in query.items()}

        if self._broken(path, first):
            return
        if path == "/echo":
            self._json(
                200,
                {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "raw_query": split.query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "header_names": list(self.headers.keys()),
                    "body": body.decode("utf-8", "replace"),
                    "client_port": self.client_address[1],
                },
                {"X-Echo": "yes"},
            )
        elif path == "/json":
            self._json(200, {"ok": True})
        elif path == "/text":
            self._send(200, b"hello", "text/plain; charset=utf-8")
        elif path == "/xml":
            xml = b'<?xml version="1.0" encoding="UTF-8"?><order id="7"><item>book</item><item>pen</item></order>'
            self._send(200, xml, "application/xml")
        elif path == "/empty-json":
            self._send(200, b"", "application/json")
        elif path == "/empty":
            self._send(204 if first.get("status") == "204" else 200, b"", "text/plain")
        elif path == "/bad-json":
            self._send(int(first.get("status", "200")), b"{not json", "application/json")
        elif path == "/bad-xml":
            self._send(200, b"<a><b></a>", "text/xml")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._json(code, {"status": code})
        elif path.startswith("/flaky/"):
            attempt = self.server.count(path)
            if attempt <= int(first.get("fail", "0")):
                code = int(first.get("code", "503"))
                self._json(code, {"attempt": attempt})
            else:
                self._json(200, {"attempt": attempt})
        elif path == "/slow":
            time.sleep(min(float(first.get("seconds", "1")), MAX_SLOW_SECONDS))
            self._json(200, {"slow": True})
        elif path == "/redirect":
            self._send(int(first.get("code", "302")), b"", None, {"Location": first.get("to", "/json")})
        elif path == "/text-utf8":
            self._send(200, "Grüße".encode(), "text/plain")
        elif path == "/empty-xml":
            self._send(200, b"", "application/xml")
        elif path == "/as":
            self._send(int(first.get("status", "200")), first.get("body", "").encode(), first.get("type"))
        elif path == "/trickle":
            self._trickle(min(float(first.get("seconds", "1")), MAX_SLOW_SECONDS))
        elif path == "/loop":
            self._send(302, b"", None, {"Location": "/loop"})
        elif path == "/set-cookie":
            self._json(200, {"set": True}, {"Set-Cookie": "session=abc123; Path=/"})
        else:
            self._json(404, {"error": "no such route"})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class LiveServer:
    def __init__(self, server: RecordingServer) -> None:
        self.server = server
        self.base = f"http://127.0.0.1:{server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def client_ports(self) -> list[int]:
        with self.server.lock:
            return list(self.server.client_ports)

    def calls(self, path: str) -> int:
        """How many requests a ``/flaky/...`` path received."""
        with self.server.lock:
            return self.server.counters[path]

    def reset(self) -> None:
        with self.server.lock:
            self.server.counters.clear()
            self.server.client_ports.clear()


@pytest.fixture(scope="session")
def _server_instance() -> Iterator[LiveServer]:
    with _running(RecordingServer()) as live:
        yield live


class _running:
    """Serve ``server`` in a thread for the ``with`` block."""

    def __init__(self, server: RecordingServer) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return LiveServer(self.server)

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The same routes over HTTPS, with a self-signed certificate."""
    with _running(RecordingServer(tls=self_signed_certificate(tmp_path_factory.mktemp("tls")).server_context)) as live:
        live.base = live.base.replace("http://", "https://")
        yield live


@pytest.fixture
def server(_server_instance: LiveServer) -> LiveServer:
    _server_instance.reset()
    return _server_instance


@pytest.fixture
def ctx() -> Context:
    return Context()


@pytest.fixture(autouse=True)
async def _close_loop_client() -> AsyncIterator[None]:
    """Commands called without the lifespan create one client per loop: close it after each test."""
    yield
    await aclose_loop_client()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: new connections never complete (connect timeouts)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):  # Linux queues backlog + 1 connections; the first that hangs proves it full
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.settimeout(0.2)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.fail("the accept queue never filled up")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.fixture
def deaf_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never reads from them (a large upload stalls)."""
    with silent_port(receive_buffer=4096) as port:
        yield port


@dataclass(frozen=True)
class CommunityOutcome:
    """What the community connector answers: ``error_code`` (or None), ``http_status``, ``body``, the message."""

    error_code: str | None
    http_status: int
    body: Any
    message: str | None = None


class CommunityConnector:
    """A model of the community ``connector-http`` ``*RequestV2`` commands on real ``requests``.

    It follows that connector's request handling (``HttpRequestBase.run_request``) step by step:
    the same ``requests`` call and arguments, the exception's class name as the error code and
    500 as the status, the 5xx retry loop (whose error survives a later successful attempt),
    the body parsing by content type and ``HttpError<status>`` only when no error is set yet.
    ``timeout`` (300 there) and ``pause`` (the 1 s sleep between attempts) are parameters so
    that tests stay short; nothing else differs.
    """

    METHODS = {
        "GetRequestV2": "get",
        "HeadRequestV2": "head",
        "PostRequestV2": "post",
        "PutRequestV2": "put",
        "PatchRequestV2": "patch",
        "DeleteRequestV2": "delete",
    }

    def __call__(
        self,
        command: str,
        *,
        url: Any,
        headers: Any = None,
        params: Any = None,
        data: Any = None,
        basic_auth_username: Any = None,
        basic_auth_password: Any = None,
        attempts: Any = None,
        timeout: float = 300,
        pause: float = 0.0,
    ) -> CommunityOutcome:
        method = getattr(requests, self.METHODS[command])
        if command in ("GetRequestV2", "HeadRequestV2"):
            params = params or {}
            if not isinstance(attempts, int) or attempts < 1 or attempts > 10:
                attempts = 1
        else:
            attempts = 1
        if command in ("PostRequestV2", "PutRequestV2", "PatchRequestV2"):
            params = None  # these commands take no params
            data = data or {}
        auth = None
        if basic_auth_username is not None and basic_auth_password is not None:
            auth = (basic_auth_username, basic_auth_password)

        error: str | None = None
        message: str | None = None
        status = 0
        response: requests.Response | None = None
        for attempt in range(1, attempts + 1):
            status, response = 0, None
            if attempt > 1:
                time.sleep(pause)
            arguments: dict[str, Any] = {"url": url, "headers": headers or {}, "auth": auth, "timeout": timeout}
            if params is not None:
                arguments["params"] = params
            if data is not None:
                arguments["json"] = data
            try:
                response = method(**arguments)
                assert response is not None
                status = response.status_code
            except Exception as exc:
                error, message = type(exc).__name__, f"Received Error: {exc}. Raw http_response was: None"
                status = 500
            if status // 100 != 5:
                break

        body: Any = {}
        if response is not None:
            body = {"raw_response": response.text}
            content_type = response.headers.get("Content-Type", "")
            try:
                if "application/json" in content_type:
                    body = json.loads(response.text)
                elif "application/xml" in content_type or "text/xml" in content_type:
                    body = xmltodict.parse(response.text)
            except Exception as exc:
                error = type(exc).__name__
                message = f"Received Error: {exc}. Raw http_response was: {response.text}"
        if status >= 400 and error is None:
            error = f"HttpError{status}"
            message = f"Received Error: . Raw http_response was: {response.text if response is not None else None}"
        return CommunityOutcome(error, status, body, message)


@pytest.fixture(scope="session")
def community() -> CommunityConnector:
    return CommunityConnector()
