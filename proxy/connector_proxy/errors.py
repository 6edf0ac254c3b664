"""Stable dispatch error codes and the dispatch-error envelope.

Every code here is documented in docs/errors.md; spiff-arena turns ``error_code``
into the BPMN error code that boundary events catch, so none of them may change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    COMMAND_NOT_FOUND = "command_not_found"
    INVALID_REQUEST_BODY = "invalid_request_body"
    REQUEST_TOO_LARGE = "request_too_large"
    PROXY_BUSY = "proxy_busy"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    MISSING_PARAMETER = "missing_parameter"
    UNKNOWN_PARAMETER = "unknown_parameter"
    INVALID_PARAMETER = "invalid_parameter"
    COMMAND_TIMEOUT = "command_timeout"
    COMMAND_CRASHED = "command_crashed"
    INVALID_COMMAND_RESULT = "invalid_command_result"
    CONNECTOR_UNAVAILABLE = "connector_unavailable"
    CONNECTOR_TIMEOUT = "connector_timeout"
    CONNECTOR_MISCONFIGURED = "connector_misconfigured"


class DispatchError(Exception):
    """A request the proxy cannot dispatch; rendered as the dispatch-error envelope.

    ``message`` must never contain parameter values or configuration.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message

    def envelope(self) -> dict[str, Any]:
        return dispatch_error_envelope(self.code, self.message)


def dispatch_error_envelope(code: str, message: str) -> dict[str, Any]:
    return {"command_response": {}, "error": {"error_code": code, "message": message}}
