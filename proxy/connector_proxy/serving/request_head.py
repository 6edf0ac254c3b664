"""Bounds on a request's head (request line and headers), which uvicorn's httptools protocol lacks.

Without them a client can hold a connection open forever by sending its headers a byte at a time
(or nothing at all), and send headers of any size, all kept in memory. This protocol answers
``431`` and closes the connection when the head exceeds :attr:`BoundedHeadProtocol.max_head_bytes`,
and closes a connection whose head has not arrived :attr:`BoundedHeadProtocol.head_timeout`
seconds after the connection or the request began. Bodies are bounded by the proxy itself
(``CONNECTOR_PROXY_MAX_REQUEST_BYTES``); an idle kept-alive connection by uvicorn's keep-alive
timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 31\r\nconnection: close\r\n\r\nRequest header fields too large"
)


class _HeadTooLarge(Exception):
    pass


class BoundedHeadProtocol(HttpToolsProtocol):
    max_head_bytes = 64 * 1024
    head_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._too_large = False
        self._awaiting_head = False
        self._head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._awaiting_head = True
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        self._awaiting_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        if self._awaiting_head and self.transport is not None and not self.transport.is_closing():
            logger.info("request head not received in time", extra={"timeout_s": self.head_timeout})
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, but a head over the limit is answered 431 (httptools reports a callback's
        exception as a parse error, which uvicorn would answer 400)."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._too_large:
                logger.info("request head too large", extra={"limit_bytes": self.max_head_bytes})
                self._disarm()
                self.transport.write(_TOO_LARGE)
                self.transport.close()
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            self._too_large = True
            raise _HeadTooLarge

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()


def bounded_head_protocol(max_head_bytes: int, head_timeout: float) -> type[BoundedHeadProtocol]:
    return type(
        "ConfiguredBoundedHeadProtocol",
        (BoundedHeadProtocol,),
        {"max_head_bytes": max_head_bytes, "head_timeout": head_timeout},
    )
