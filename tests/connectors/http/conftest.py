"""Fixtures for the HTTP connector tests: a real HTTP/1.1 server on 127.0.0.1.

Routes (any method unless noted):

- ``/echo``: JSON with the method, path, query, headers, body and client port;
- ``/json``: ``{"ok": true}``; ``/text``: ``hello``; ``/xml``: a small XML document;
- ``/empty-json`` / ``/empty``: empty body with a JSON / text content type;
- ``/bad-json`` / ``/bad-xml``: bodies that do not parse;
- ``/status/<code>``: answers ``<code>`` with a JSON body;
- ``/flaky/<key>?fail=N&code=C``: the first N calls answer C, then 200 with the attempt number;
- ``/slow?seconds=S``: sleeps S seconds before answering;
- ``/redirect?to=<path>``: 302 to ``<path>``;
- ``/loop``: redirects to itself;
- ``/set-cookie``: sets a cookie.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from spiff_connector_http.client import aclose_loop_client
from spiff_connector_sdk import Context

MAX_SLOW_SECONDS = 2.0


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.client_ports: list[int] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that gave up (timeouts) make writes fail; that is expected here."""

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

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.client_ports.append(self.client_address[1])
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        first = {k: v[0] for k, v in query.items()}

        if path == "/echo":
            self._json(
                200,
                {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
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
            self._send(302, b"", None, {"Location": first.get("to", "/json")})
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
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield LiveServer(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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
