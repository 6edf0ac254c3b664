"""The hot endpoints served straight from ASGI, in front of FastAPI: the one place they are answered.

``GET /v1/commands``, ``GET /v1/auths``, ``GET /v1/liveness`` and ``POST /v1/do/<c>/<cmd>`` are
answered here (with :mod:`connector_proxy.dispatch`), without FastAPI's per-request routing and
dependency machinery; everything else (docs, OpenAPI, other methods, odd paths) falls through to
FastAPI unchanged. It runs in front of FastAPI's middleware stack (``connector_proxy.app.ProxyApp``);
the API key middleware sits outside it.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector_proxy.body_budget import BodyBudget, Hold
from connector_proxy.call_context import CallContext, request_id_from
from connector_proxy.dispatch import Answer, call_headers, catalog_answer, do_answer, outcome_answer, record_refused
from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.outcome import Outcome
from connector_proxy.state import ProxyState
from connector_proxy.tracing import incoming

_LIVENESS = Answer(200, b'{"ok":true}')
_DO_PREFIX = "/v1/do/"
_CLOSE = (b"connection", b"close")


async def send_answer(send: Send, answer: Answer) -> None:
    headers = list(answer.headers)
    if answer.content_type is not None:
        headers[:0] = [(b"content-type", answer.content_type), (b"content-length", str(len(answer.body)).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def too_large(limit: int) -> DispatchError:
    return DispatchError(
        413,
        ErrorCode.REQUEST_TOO_LARGE,
        f"The request body exceeds CONNECTOR_PROXY_MAX_REQUEST_BYTES ({limit} bytes); nothing was run.",
    )


def json_media_type(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type, parameters ignored; no Content-Type at all counts
    as JSON (what a body-less or hand-written call sends)."""
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def not_json(content_type: str) -> DispatchError:
    shown = content_type.partition(";")[0].strip()[:100]
    return DispatchError(
        415,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        f"The request body must be sent as application/json, not {shown or 'an empty type'}; nothing was run.",
    )


async def read_body(scope: Scope, receive: Receive, limit: int, hold: Hold | None = None) -> bytes:
    """The whole request body; :func:`too_large` as soon as it is known to exceed ``limit`` bytes
    (from ``Content-Length`` before reading, or while reading a chunked body). With ``hold``, the
    body's size is taken from the worker's body budget first (``proxy_busy`` when it has no room)."""
    declared = header(scope, b"content-length")
    length = int(declared) if declared is not None and declared.isdigit() else None
    if length is not None and length > limit:
        raise too_large(limit)
    if hold is not None and length is not None:
        await hold.take(length)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":  # the body never fully arrived: run nothing on it
            raise DispatchError(
                400, ErrorCode.INVALID_REQUEST_BODY, "The request body did not arrive completely; nothing was run."
            )
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        if hold is not None and length is None:
            await hold.take(len(chunk))
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value).decode("latin-1")
    return None


class FastPath:
    def __init__(
        self, app: ASGIApp, state: ProxyState, max_request_bytes: int, budget: BodyBudget | None = None
    ) -> None:
        self.app = app
        self.state = state
        self.max_request_bytes = max_request_bytes
        self.budget = budget

    async def _do(self, scope: Scope, receive: Receive, command_id: str) -> Answer:
        hold = self.budget.hold() if self.budget is not None else None
        call = CallContext(request_id_from(header(scope, b"x-request-id")), trace_headers=incoming(scope["headers"]))
        started = time.perf_counter()
        try:
            try:
                content_type = header(scope, b"content-type")
                if not json_media_type(content_type):
                    # A browser's cross-site "simple" POST (text/plain, a form) must not run commands.
                    raise not_json(content_type or "")
                body = await read_body(scope, receive, self.max_request_bytes, hold)
            except DispatchError as error:
                outcome = Outcome.from_error(error)
                record_refused(self.state, command_id, outcome, call, time.perf_counter() - started)
                # The rest of the body is never read: the connection cannot be reused.
                return outcome_answer(outcome, (*call_headers(outcome, call), _CLOSE))
            return await do_answer(self.state, command_id, body, call)
        finally:
            if hold is not None:
                await hold.release()

    def _answer_get(self, scope: Scope, path: str) -> Answer | None:
        if path == "/v1/liveness":
            return _LIVENESS
        registry = self.state.registry
        snapshot = (
            registry.commands_catalog
            if path == "/v1/commands"
            else registry.auths_catalog
            if path == "/v1/auths"
            else None
        )
        if snapshot is None:
            return None
        return catalog_answer(snapshot, header(scope, b"if-none-match"), header(scope, b"accept-encoding"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            answer: Answer | None = None
            if method == "POST" and path.startswith(_DO_PREFIX):
                connector, _, command = path[len(_DO_PREFIX) :].partition("/")
                if connector and command and "/" not in command:
                    answer = await self._do(scope, receive, f"{connector}/{command}")
            elif method == "GET":
                answer = self._answer_get(scope, path)
            if answer is not None:
                await send_answer(send, answer)
                return
        await self.app(scope, receive, send)
