"""``POST /v1/do/{connector}/{command}``: run a command and answer with its envelope."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.outcome import Outcome
from connector_proxy.state import proxy_state

router = APIRouter(tags=["commands"])
logger = logging.getLogger("connector_proxy.do")

_DO_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "The command ran; inspect the v2 envelope's error (or a legacy v1 result)."},
    202: {"description": "A long-running command was accepted; it completes through spiff__callback_url."},
    400: {"description": "invalid_request_body, missing_parameter, unknown_parameter or invalid_parameter."},
    401: {"description": "API key missing or wrong."},
    404: {"description": "command_not_found."},
    500: {"description": "The command raised (error_code = exception class) or returned an invalid result."},
    503: {"description": "connector_unavailable: the connector workload cannot be reached."},
    504: {"description": "command_timeout / connector_timeout."},
}


def _respond(outcome: Outcome) -> Response:
    return Response(content=outcome.body, status_code=outcome.status, media_type=outcome.media_type)


async def _dispatch(request: Request, command_id: str) -> Outcome:
    state = proxy_state(request)
    command = state.registry.commands.get(command_id)
    if command is None:
        raise DispatchError(404, ErrorCode.COMMAND_NOT_FOUND, f"No command {command_id} is registered.")
    return await command.run(await request.body(), state.runtime)


@router.post("/v1/do/{connector}/{command}", summary="Execute a connector command", responses=_DO_DOC)
async def do_command(connector: str, command: str, request: Request) -> Response:
    command_id = f"{connector}/{command}"
    started = time.perf_counter()
    try:
        outcome = await _dispatch(request, command_id)
    except DispatchError as error:
        outcome = Outcome.from_error(error)
        logger.info("command not dispatched", extra={"command": command_id, "error_code": error.code})
    state = proxy_state(request)
    label = command_id if command_id in state.registry.commands else "unknown"
    state.metrics.observe(label, outcome.status, outcome.error_code, time.perf_counter() - started)
    return _respond(outcome)


@router.post("/v1/do/{path:path}", include_in_schema=False)
async def do_malformed(path: str) -> Response:
    error = DispatchError(
        404,
        ErrorCode.COMMAND_NOT_FOUND,
        "Command ids have the form <connector>/<command>; use /v1/do/<connector>/<command>.",
    )
    return _respond(Outcome.from_error(error))
