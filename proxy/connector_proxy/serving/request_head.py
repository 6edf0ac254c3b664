"""Bounds on a request's head (request line and headers), which uvicorn's httptools protocol lacks.

Without them a client can hold a connection open forever by sending its headers a byte at a time
(or nothing at all), and send headers of any size, all kept in memory. This protocol answers
``431`` and closes the connection when the head exceeds :attr:`BoundedHeadProtocol.max_head_bytes`,
and closes a connection whose head has not arrived :attr:`BoundedHeadProtocol.head_timeout`
seconds after the connection or the request began. Bodies are bounded by the proxy itself
(``CONNECTOR_PROXY_MAX_REQUEST_BYTES``); an idle kept-alive connection by uvicorn's keep-alive
timeout. Each request's response is written through :class:`HeadWithBody` (head and body in one
write).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connector_proxy.serving.one_write import HeadWithBody

logger = logging.getLogger(__name__)

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 31\r\nconnection: close\r\n\r\nRequest header fields too large"
)


class HeadTooLarge(Exception):
    """Raised from the parser callback to stop parsing a head over the limit."""


class BoundedHeadProtocol(HttpToolsProtocol):
    max_head_bytes = 64 * 1024
    head_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._too_large = False
        self._awaiting_head = False
        self._head_started = 0.0
        self._head_timer: asyncio.TimerHandle | None = None

    # One timer per connection, not per request (that would cost the hot path a timer each time):
    # it fires every head_timeout seconds at most and checks when the awaited head began.
    def _check_head(self) -> None:
        self._head_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if self._awaiting_head and now - self._head_started >= self.head_timeout:
            logger.info("request head not received in time", extra={"timeout_s": self.head_timeout})
            self.transport.close()
            return
        due = self._head_started + self.head_timeout if self._awaiting_head else now + self.head_timeout
        self._head_timer = self.loop.call_at(due, self._check_head)

    def _stop_checking(self) -> None:
        self._awaiting_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._awaiting_head = True
        self._head_started = self.loop.time()
        self._head_timer = self.loop.call_at(self._head_started + self.head_timeout, self._check_head)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_checking()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, plus the head's size: over the limit it is answered 431 and closed."""
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._too_large:  # raised by on_headers_complete: httptools reports it as a parse error
                self._refuse_head()
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # Still in the head after all these bytes: no body can have begun, so the head is at
        # least this large.
        if self._awaiting_head and self._head_bytes > self.max_head_bytes:
            self._refuse_head()

    def _refuse_head(self) -> None:
        logger.info("request head too large", extra={"limit_bytes": self.max_head_bytes})
        self._stop_checking()
        self.transport.write(_TOO_LARGE)
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = True
        self._head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        # The reads holding this head were larger than the limit (rare): measure the head itself,
        # since those reads may hold the body too.
        if self._head_bytes > self.max_head_bytes:
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.max_head_bytes:
                self._too_large = True
                raise HeadTooLarge
        self._awaiting_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        # The cycle just made has not run yet (its task starts at the loop's next iteration).
        self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]


def bounded_head_protocol(max_head_bytes: int, head_timeout: float) -> type[BoundedHeadProtocol]:
    return type(
        "ConfiguredBoundedHeadProtocol",
        (BoundedHeadProtocol,),
        {"max_head_bytes": max_head_bytes, "head_timeout": head_timeout},
    )
