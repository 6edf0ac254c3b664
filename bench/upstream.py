"""The benchmark's upstream: a minimal HTTP/1.1 server answering every request with one small JSON document.

A raw asyncio protocol on uvloop with httptools parsing, so that it is much faster than the proxy and a
direct ``wrk`` run against it is the floor. Keep-alive is honoured; every path answers the same body.
``--delay`` answers each request that many seconds after it arrived (a slow API: the concurrency scenario).

    python bench/upstream.py --port 8081 [--delay 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import cast

import httptools
import uvloop

BODY = b'{"id":42,"name":"bench upstream","ok":true,"items":[1,2,3],"nested":{"kind":"json","size":"small"}}'
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(BODY)
KEEP_ALIVE = _HEAD + b"\r\n" + BODY
CLOSE = _HEAD + b"Connection: close\r\n\r\n" + BODY
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class JsonProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, answer each as soon as it is complete (or
    ``delay`` seconds later)."""

    delay = 0.0

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport is not a subclass

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(BAD_REQUEST)
            self.transport.close()

    def on_message_complete(self) -> None:
        if self.delay > 0:
            asyncio.get_running_loop().call_later(self.delay, self.answer, self.parser.should_keep_alive())
            return
        self.answer(self.parser.should_keep_alive())

    def answer(self, keep_alive: bool) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        if keep_alive:
            self.transport.write(KEEP_ALIVE)
            return
        self.transport.write(CLOSE)
        self.transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(JsonProtocol, host, port, backlog=1024, reuse_address=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="Seconds before each answer.")
    args = parser.parse_args()
    JsonProtocol.delay = args.delay
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
