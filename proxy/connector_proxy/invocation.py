"""Parsing a ``POST /v1/do`` body into parameters and spiff-arena metadata."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from connector_proxy.call_context import current_call
from connector_proxy.errors import DispatchError, ErrorCode

RESERVED_PREFIX = "spiff__"
# orjson reads integers beyond 64 bits as floats: a body with a run of 19+ digits (in a number, or
# in a string, which costs only the slower parse) is read by the stdlib parser, which keeps them.
_LONG_DIGITS = re.compile(rb"\d{19,}")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(body: bytes) -> Any:
    """Every number exact, NaN and Infinity refused (as orjson does); ``ValueError`` if not JSON."""
    if _LONG_DIGITS.search(body) is None:
        return orjson.loads(body)
    return json.loads(body, parse_constant=_no_constants)


@dataclass(frozen=True)
class Invocation:
    """One command call: its parameters and the reserved ``spiff__*`` values.

    Unknown ``spiff__*`` keys are dropped; they are never passed to commands.
    """

    params: dict[str, Any]
    task_data: dict[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    process_instance_id: int | None = None
    process_model_identifier: str | None = None
    task_id: str | None = None


def _optional(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else None


def parse_invocation(body: bytes) -> Invocation:
    """Parse the JSON body; anything but a JSON object is ``400 invalid_request_body``."""
    if not body.strip():
        payload: Any = {}
    else:
        try:
            payload = load_json(body)
        except (ValueError, RecursionError):  # orjson.JSONDecodeError, UnicodeDecodeError; too deep
            raise DispatchError(400, ErrorCode.INVALID_REQUEST_BODY, "The request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise DispatchError(
            400, ErrorCode.INVALID_REQUEST_BODY, "The request body must be a JSON object of parameters."
        )
    params = {k: v for k, v in payload.items() if not k.startswith(RESERVED_PREFIX)}
    task_data = payload.get("spiff__task_data")
    if task_data is None:
        task_data = {}
    elif not isinstance(task_data, dict):
        raise DispatchError(400, ErrorCode.INVALID_REQUEST_BODY, "spiff__task_data must be a JSON object.")
    callback_url = payload.get("spiff__callback_url")
    if callback_url is not None and not isinstance(callback_url, str):
        raise DispatchError(400, ErrorCode.INVALID_REQUEST_BODY, "spiff__callback_url must be a string.")
    invocation = Invocation(
        params=params,
        task_data=task_data,
        callback_url=callback_url or None,
        process_instance_id=_optional(payload.get("spiff__process_instance_id"), int),
        process_model_identifier=_optional(payload.get("spiff__process_model_identifier"), str),
        task_id=_optional(payload.get("spiff__task_id"), str),
    )
    call = current_call.get()
    if call is not None:  # for the call's log line
        call.process_instance_id = invocation.process_instance_id
        call.process_model_identifier = invocation.process_model_identifier
        call.task_id = invocation.task_id
    return invocation
