"""The hot endpoints served straight from ASGI, in front of FastAPI.

``GET /v1/commands``, ``GET /v1/auths``, ``GET /v1/liveness`` and ``POST /v1/do/<c>/<cmd>`` are
answered here with the same functions the FastAPI routers use (``connector_proxy.dispatch``),
without FastAPI's per-request routing and dependency machinery; everything else (docs, OpenAPI,
other methods, odd paths) falls through to FastAPI unchanged. It runs in front of FastAPI's
middleware stack (``connector_proxy.app.ProxyApp``); the API key middleware sits outside it.
"""

from __future__ import annotations

import functools
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector_proxy.catalog import CatalogSnapshot
from connector_proxy.dispatch import catalog_headers, catalog_status, dispatch
from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.logging_setup import DO_CHANNEL
from connector_proxy.outcome import Outcome
from connector_proxy.state import ProxyState

logger = logging.getLogger(DO_CHANNEL)
_JSON = b"application/json"
_LIVENESS = b'{"ok":true}'
_DO_PREFIX = "/v1/do/"


async def _send(send: Send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def too_large(limit: int) -> DispatchError:
    return DispatchError(
        413,
        ErrorCode.REQUEST_TOO_LARGE,
        f"The request body exceeds CONNECTOR_PROXY_MAX_REQUEST_BYTES ({limit} bytes); nothing was run.",
    )


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; :func:`too_large` as soon as it is known to exceed ``limit`` bytes
    (from ``Content-Length`` before reading, or while reading a chunked body)."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value).decode("latin-1")
    return None


@functools.lru_cache(maxsize=16)
def _catalog_headers(etag: str) -> tuple[tuple[bytes, bytes], ...]:
    """The raw caching headers of a catalog snapshot (built once per snapshot, not per request)."""
    return tuple((k.encode(), v.encode("latin-1")) for k, v in catalog_headers(etag).items())


class FastPath:
    def __init__(self, app: ASGIApp, state: ProxyState, max_request_bytes: int) -> None:
        self.app = app
        self.state = state
        self.max_request_bytes = max_request_bytes

    async def _do(self, scope: Scope, receive: Receive, send: Send, command_id: str) -> None:
        try:
            body = await read_body(scope, receive, self.max_request_bytes)
        except DispatchError as error:
            logger.info("request refused", extra={"command": command_id, "error_code": error.code})
            outcome = Outcome.from_error(error)
            # The rest of the body is never read: the connection cannot be reused.
            await _send(send, outcome.status, outcome.body, _JSON, [(b"connection", b"close")])
            return
        outcome = await dispatch(self.state, command_id, body)
        await _send(send, outcome.status, outcome.body, outcome.media_type.encode("latin-1"), [])

    async def _catalog(self, scope: Scope, send: Send, snapshot: CatalogSnapshot) -> None:
        extra = list(_catalog_headers(snapshot.etag))
        if catalog_status(snapshot, _header(scope, b"if-none-match")) == 304:
            await send({"type": "http.response.start", "status": 304, "headers": extra})
            await send({"type": "http.response.body", "body": b""})
            return
        body, gzipped = snapshot.encoded(_header(scope, b"accept-encoding"))
        if gzipped:
            extra.append((b"content-encoding", b"gzip"))
        await _send(send, 200, body, _JSON, extra)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "POST" and path.startswith(_DO_PREFIX):
                connector, _, command = path[len(_DO_PREFIX) :].partition("/")
                if connector and command and "/" not in command:
                    await self._do(scope, receive, send, f"{connector}/{command}")
                    return
            elif method == "GET":
                if path == "/v1/commands":
                    await self._catalog(scope, send, self.state.registry.commands_catalog)
                    return
                if path == "/v1/auths":
                    await self._catalog(scope, send, self.state.registry.auths_catalog)
                    return
                if path == "/v1/liveness":
                    await _send(send, 200, _LIVENESS, _JSON, [])
                    return
        await self.app(scope, receive, send)
