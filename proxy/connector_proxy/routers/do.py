"""``POST /v1/do/{connector}/{command}``: run a command and answer with its envelope.

:mod:`connector_proxy.fastpath` answers every well-formed call (with the request size limit); these
routes declare the OpenAPI operation, with the same function, and answer malformed paths.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from connector_proxy.call_context import CallContext, request_id_from
from connector_proxy.dispatch import MALFORMED_PATH, as_response, do_answer, outcome_answer
from connector_proxy.outcome import Outcome
from connector_proxy.state import proxy_state
from connector_proxy.tracing import incoming

router = APIRouter(tags=["commands"])

_DO_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "The command ran; inspect the v2 envelope's error (or a legacy v1 result)."},
    202: {"description": "A long-running command was accepted; it completes through spiff__callback_url."},
    400: {"description": "invalid_request_body, missing_parameter, unknown_parameter or invalid_parameter."},
    401: {"description": "API key missing or wrong."},
    404: {"description": "command_not_found."},
    413: {"description": "request_too_large: the body exceeds CONNECTOR_PROXY_MAX_REQUEST_BYTES."},
    500: {"description": "The command raised (error_code = exception class) or returned an invalid result."},
    503: {"description": "connector_unavailable: the connector workload cannot be reached."},
    504: {"description": "command_timeout / connector_timeout."},
}


@router.post("/v1/do/{connector}/{command}", summary="Execute a connector command", responses=_DO_DOC)
async def do_command(connector: str, command: str, request: Request) -> Response:
    call = CallContext(
        request_id_from(request.headers.get("x-request-id")), trace_headers=incoming(request.headers.raw)
    )
    return as_response(await do_answer(proxy_state(request), f"{connector}/{command}", await request.body(), call))


@router.post("/v1/do/{path:path}", include_in_schema=False)
async def do_malformed(path: str) -> Response:
    return as_response(outcome_answer(Outcome.from_error(MALFORMED_PATH)))
