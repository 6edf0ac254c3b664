"""Answering the hot endpoints: the one implementation behind the fast path and the routers.

:mod:`connector_proxy.fastpath` serves every request it matches from these functions as raw ASGI
messages; the FastAPI routes of the same endpoints (which declare their OpenAPI operations and
answer what the fast path leaves, such as ``HEAD``) turn the same :class:`Answer` into a Response.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

from starlette.responses import Response

from connector_proxy.call_context import (
    ERROR_CODE_HEADER,
    OUTCOME_HEADER,
    REQUEST_ID_HEADER,
    CallContext,
    current_call,
)
from connector_proxy.catalog import CatalogSnapshot
from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.logging_setup import DO_CHANNEL
from connector_proxy.metrics import UNKNOWN_COMMAND
from connector_proxy.outcome import SAFE_CODE, SUCCESS, Outcome
from connector_proxy.state import ProxyState

logger = logging.getLogger(DO_CHANNEL)
MALFORMED_PATH = DispatchError(
    404,
    ErrorCode.COMMAND_NOT_FOUND,
    "Command ids have the form <connector>/<command>; use /v1/do/<connector>/<command>.",
)
JSON_TYPE = b"application/json"
Headers = tuple[tuple[bytes, bytes], ...]
# How a call that ended without an outcome (cancelled, or an unexpected error in the proxy) is
# counted and logged; it is never sent.
UNANSWERED = Outcome(500, b"", error_code="unanswered", kind="dispatch_error")
_REQUEST_ID, _OUTCOME, _ERROR_CODE = REQUEST_ID_HEADER.encode(), OUTCOME_HEADER.encode(), ERROR_CODE_HEADER.encode()


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole HTTP answer. ``content_type`` None: no body headers at all (a 304)."""

    status: int
    body: bytes
    content_type: bytes | None = JSON_TYPE
    headers: Headers = ()


async def dispatch(state: ProxyState, command_id: str, body: bytes, call: CallContext) -> Outcome:
    """Run ``command_id`` for a raw request body; every failure becomes its dispatch-error outcome.
    Records the call: its metrics, its span and its log line (:func:`record_log`)."""
    started = time.perf_counter()
    registry = state.registry  # one snapshot for the whole request
    command = registry.commands.get(command_id)
    label = command_id if command is not None else UNKNOWN_COMMAND
    state.metrics.started(label)
    token = current_call.set(call)
    span, trace_token = state.tracing.start(label, call.trace_headers)
    outcome = UNANSWERED
    try:
        if command is None:
            raise DispatchError(404, ErrorCode.COMMAND_NOT_FOUND, f"No command {command_id} is registered.")
        outcome = await command.run(body, state.runtime)
    except DispatchError as error:
        outcome = Outcome.from_error(error)
    finally:  # also when the call is cancelled or something unexpected escapes: never a call left in flight
        state.tracing.end(span, trace_token, outcome)
        current_call.reset(token)
        seconds = time.perf_counter() - started
        state.metrics.observe(label, outcome.status, outcome.kind, outcome.error_code, seconds)
        record_log(command_id, outcome, call, seconds)
    return outcome


def record_refused(state: ProxyState, command_id: str, outcome: Outcome, call: CallContext, seconds: float) -> None:
    """A call refused before dispatch (its body: too large, not JSON): its metrics and its log line."""
    label = command_id if command_id in state.registry.commands else UNKNOWN_COMMAND
    state.metrics.observe(label, outcome.status, outcome.kind, outcome.error_code, seconds, started=False)
    record_log(command_id, outcome, call, seconds)


def record_log(command_id: str, outcome: Outcome, call: CallContext, seconds: float) -> None:
    """The call's one log line (``connector_proxy.do``, at info): the command, how it went, the
    status, the duration, the request id and the task's ids; never a parameter value."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields = call.log_fields()
    fields.update(command=command_id, outcome=outcome.kind, status=outcome.status, duration_ms=round(seconds * 1000, 3))
    if outcome.error_code is not None:
        fields["error_code"] = outcome.error_code
    logger.info("command answered", extra=fields)


def call_headers(outcome: Outcome, call: CallContext) -> Headers:
    """The answer's ``X-Request-Id``, and how the call went when it failed (a front proxy forwarding
    to this one counts the workload's outcome from them without parsing the envelope)."""
    request_id = (_REQUEST_ID, call.request_id.encode("latin-1"))
    if outcome.kind == SUCCESS or outcome.error_code is None:
        return (request_id,)
    code = outcome.error_code if SAFE_CODE.match(outcome.error_code) else "other"
    return (request_id, (_OUTCOME, outcome.kind.encode()), (_ERROR_CODE, code.encode()))


def outcome_answer(outcome: Outcome, headers: Headers = ()) -> Answer:
    return Answer(outcome.status, outcome.body, outcome.media_type.encode("latin-1"), headers)


async def do_answer(state: ProxyState, command_id: str, body: bytes, call: CallContext) -> Answer:
    """``POST /v1/do/<connector>/<command>``."""
    outcome = await dispatch(state, command_id, body, call)
    return outcome_answer(outcome, call_headers(outcome, call))


@functools.lru_cache(maxsize=16)
def _catalog_headers(etag: str) -> Headers:
    """The caching headers of a catalog snapshot (built once per snapshot, not per request)."""
    return ((b"etag", etag.encode("latin-1")), (b"cache-control", b"no-cache"), (b"vary", b"accept-encoding"))


def catalog_answer(snapshot: CatalogSnapshot, if_none_match: str | None, accept_encoding: str | None) -> Answer:
    """``GET /v1/commands`` and ``/v1/auths``: the prebuilt bytes (gzip when asked), or 304 when the
    client already holds this snapshot."""
    headers = _catalog_headers(snapshot.etag)
    if snapshot.matches(if_none_match):
        return Answer(304, b"", None, headers)
    body, gzipped = snapshot.encoded(accept_encoding)
    if gzipped:
        headers = (*headers, (b"content-encoding", b"gzip"))
    return Answer(200, body, JSON_TYPE, headers)


def as_response(answer: Answer) -> Response:
    """The same answer as a Starlette Response, for the FastAPI routes."""
    response = Response(content=answer.body, status_code=answer.status)
    kept = [(k, v) for k, v in response.raw_headers if k != b"content-type"]
    if answer.content_type is not None:
        kept.append((b"content-type", answer.content_type))
    response.raw_headers = [*kept, *answer.headers]
    return response
