"""A response's head goes out with its body in one write: one TCP segment for a small answer, not
two. A head whose body comes later, ``100 Continue`` and pipelined requests are answered as before."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connector_proxy.serving.one_write import CONTINUE, HeadWithBody
from connector_proxy.serving.request_head import bounded_head_protocol
from proxytest.serve_process import serving
from proxytest.servers import serve_in_thread

TCP_INFO_DATA_SEGS_IN = 152  # struct tcp_info's tcpi_data_segs_in (Linux 4.6+)
BODY_DELAY = 0.5


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("site"), CONNECTOR_PROXY_RELOAD_PACKAGES="false") as running:
        yield running.url


async def late_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers ``/late`` with its head, then its body ``BODY_DELAY`` s later; anything else at once,
    echoing the request body."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = [(b"content-length", b"5" if scope["path"] == "/late" else str(len(body) + 2).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/late":
        await asyncio.sleep(BODY_DELAY)
        await send({"type": "http.response.body", "body": b"later"})
    else:
        await send({"type": "http.response.body", "body": b"ok" + body})


@pytest.fixture(scope="module")
def app_server() -> Iterator[str]:
    with serve_in_thread(late_body, http=bounded_head_protocol(8192, 10.0)) as url:
        yield url


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 192)
    segments: int = struct.unpack_from("I", info, TCP_INFO_DATA_SEGS_IN)[0]
    return segments


class Answers:
    """Responses read off one connection in order (a read may hold several: pipelining)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self, what: str) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"the connection closed before the {what}"
        self.buffer += chunk

    def next(self) -> tuple[bytes, bytes]:
        """One response: its head and its body (by Content-Length)."""
        while b"\r\n\r\n" not in self.buffer:
            self._more("head")
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
        while len(rest) < length:
            self._more("body")
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        self.buffer = rest[length:]
        return head, rest[:length]


@pytest.mark.parametrize("path", ["/v1/liveness", "/v1/commands"])
def test_a_small_answer_of_the_proxy_is_one_segment(proxy: str, path: str) -> None:
    with _connect(proxy) as sock:
        request = f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode()
        answers = Answers(sock)
        sock.sendall(request)
        answers.next()  # the connection's first answer, before counting
        before = _data_segments_in(sock)
        for _ in range(10):
            sock.sendall(request)
            head, body = answers.next()
            assert head.startswith(b"HTTP/1.1 200 ") and body
            time.sleep(0.01)  # each answer alone on the wire, not merged with the next by the kernel
        assert _data_segments_in(sock) - before == 10  # before: head and body, 20


def test_a_head_whose_body_comes_later_is_sent_at_once(app_server: str) -> None:
    with _connect(app_server) as sock:
        sock.sendall(b"GET /late HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.settimeout(BODY_DELAY / 2)
        first = sock.recv(65536)  # within BODY_DELAY / 2: the head did not wait for the body
        assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536) == b"later"


def test_100_continue_goes_first_and_the_answer_follows(app_server: str) -> None:
    with _connect(app_server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
        assert sock.recv(65536) == CONTINUE  # asked for by the app's first receive
        sock.sendall(b"ping")
        head, body = Answers(sock).next()
        assert head.startswith(b"HTTP/1.1 200 ") and body == b"okping"


def test_pipelined_requests_are_answered_in_order(app_server: str) -> None:
    with _connect(app_server) as sock:
        sock.sendall(
            b"".join(f"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\n{n}".encode() for n in range(5))
        )
        answers = Answers(sock)
        assert [answers.next()[1] for _ in range(5)] == [f"ok{n}".encode() for n in range(5)]


class Recorded(asyncio.Transport):
    """A transport that keeps what it was asked to do (the unit under test only calls it)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(("writelines", [bytes(d) for d in list_of_data]))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def is_closing(self) -> bool:
        return self.closing


async def test_a_kept_head_goes_out_before_close_and_never_after_the_transport_closed() -> None:
    loop = asyncio.get_running_loop()
    transport = Recorded()
    one = HeadWithBody(transport, loop)
    one.write(b"HEAD")
    one.close()
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert transport.calls == [("write", b"HEAD"), ("close", None)]

    closed = Recorded()
    other = HeadWithBody(closed, loop)
    other.write(b"HEAD")
    closed.closing = True  # closed by the protocol itself (a lost connection)
    await asyncio.sleep(0)
    assert closed.calls == []


async def test_writes_after_the_head_and_its_body_go_straight_through() -> None:
    transport = Recorded()
    one = HeadWithBody(transport, asyncio.get_running_loop())
    for data in (CONTINUE, b"HEAD", b"BODY1", b"BODY2"):
        one.write(data)
    await asyncio.sleep(0)
    assert transport.calls == [("write", CONTINUE), ("writelines", [b"HEAD", b"BODY1"]), ("write", b"BODY2")]
