"""Bounds on request heads in ``connector-proxy serve``: oversized heads get 431, heads that never
finish (or never start) lose their connection; requests within the bounds are served as usual."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from proxytest.serve_process import serving

HEAD_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    site = tmp_path_factory.mktemp("site")
    with serving(
        site,
        CONNECTOR_PROXY_MAX_HEADER_BYTES="8192",
        CONNECTOR_PROXY_HEADER_TIMEOUT=str(HEAD_TIMEOUT),
        CONNECTOR_PROXY_RELOAD_PACKAGES="false",
    ) as running:
        yield running.url


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before closing, waiting at most ``seconds``; fails if it never closed."""
    sock.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"the connection was not closed within {seconds} s")


def test_a_head_over_the_limit_gets_431_and_is_closed(proxy: str) -> None:
    with socket.create_connection(_address(proxy), timeout=10) as sock:
        sock.sendall(b"GET /v1/commands HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20_000 + b"\r\n\r\n")
        answer = _closed_within(sock, 10)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_head_over_the_limit_in_many_reads_gets_431(proxy: str) -> None:
    with socket.create_connection(_address(proxy), timeout=10) as sock:
        sock.sendall(b"GET /v1/commands HTTP/1.1\r\nhost: x\r\n")
        try:
            for _ in range(64):  # 1 MiB of headers, never finished
                sock.sendall(b"x-more: " + b"b" * 16_000 + b"\r\n")
                time.sleep(0.005)
        except OSError:  # the proxy closed the connection: what is asserted next
            pass
        answer = _closed_within(sock, 10)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_small_head_with_a_large_body_is_served(proxy: str) -> None:
    body = b'{"url": "http://127.0.0.1:1/", "spiff__task_data": {"pad": "' + b"p" * 1_000_000 + b'"}}'
    answer = httpx.post(f"{proxy}/v1/do/http/GetRequestV2", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200


def test_a_head_sent_too_slowly_loses_its_connection(proxy: str) -> None:
    with socket.create_connection(_address(proxy), timeout=10) as sock:
        sock.sendall(b"GET /v1/commands HTTP/1.1\r\nhost: x\r\n")  # and never the rest
        started = time.monotonic()
        assert _closed_within(sock, HEAD_TIMEOUT + 9) == b""
    assert time.monotonic() - started >= HEAD_TIMEOUT * 0.9


def test_a_connection_that_sends_nothing_is_closed(proxy: str) -> None:
    with socket.create_connection(_address(proxy), timeout=10) as sock:
        assert _closed_within(sock, HEAD_TIMEOUT + 9) == b""


def test_requests_within_the_bounds_are_served(proxy: str) -> None:
    with httpx.Client(base_url=proxy, timeout=10) as client:
        for _ in range(3):  # one kept-alive connection, heads well within the bounds
            answer = client.get("/v1/commands", headers={"x-medium": "m" * 4000})
            assert answer.status_code == 200
            time.sleep(HEAD_TIMEOUT * 1.2)  # idle longer than the head timeout, but not mid-head
