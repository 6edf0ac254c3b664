"""The HTTP answer of a dispatched command, and turning command results into it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from connector_proxy.errors import DispatchError, ErrorCode

JSON = "application/json"
_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # an error code fit for a label or a header value
OutcomeKind = Literal["success", "command_error", "dispatch_error"]
SUCCESS: OutcomeKind = "success"
COMMAND_ERROR: OutcomeKind = "command_error"
DISPATCH_ERROR: OutcomeKind = "dispatch_error"


@dataclass(frozen=True, slots=True)
class Outcome:
    """Status, body bytes and media type sent back to spiff-arena unchanged; ``kind`` and
    ``error_code`` say how the call went, for metrics and the call's log line: ``command_error``
    is a command that ran and failed (its v2 error's code, ``http_<status>`` for an ``http_status``
    of 300 or more without one), ``dispatch_error`` one the proxy did not run (a dispatch code)."""

    status: int
    body: bytes
    media_type: str = JSON
    error_code: str | None = None
    kind: OutcomeKind = SUCCESS

    @classmethod
    def from_error(cls, error: DispatchError) -> Outcome:
        return cls(error.status, orjson.dumps(error.envelope()), error_code=error.code, kind=DISPATCH_ERROR)

    @classmethod
    def of_command(
        cls, status: int, body: bytes, error_code: str | None, http_status: Any = None, media_type: str = JSON
    ) -> Outcome:
        """A command's answer: failed when it has an error code or an ``http_status`` of 300 or more."""
        if error_code is None and type(http_status) is int and http_status >= 300:
            error_code = f"http_{http_status}"
        kind = SUCCESS if error_code is None else COMMAND_ERROR
        return cls(status, body, media_type, error_code=error_code, kind=kind)


def _invalid(command_id: str, why: str) -> DispatchError:
    return DispatchError(500, ErrorCode.INVALID_COMMAND_RESULT, f"Command {command_id} returned {why}.")


def dump_json(value: Any, command_id: str) -> bytes:
    try:
        return orjson.dumps(value, option=_DUMP_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:  # the stdlib encoder also takes integers beyond 64 bits and non-str dict keys
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        raise _invalid(command_id, "a value that cannot be serialised as JSON") from None


def v2_envelope(
    body: Any,
    *,
    mimetype: str = JSON,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
    error: Mapping[str, str] | None = None,
    logs: list[str] | None = None,
) -> dict[str, Any]:
    command_response: dict[str, Any] = {"body": body, "mimetype": mimetype}
    if http_status is not None:
        command_response["http_status"] = http_status
    if headers is not None:
        command_response["headers"] = dict(headers)
    return {
        "command_response": command_response,
        "command_response_version": 2,
        "error": dict(error) if error is not None else None,
        "spiff__logs": list(logs or []),
    }


def _v2_error(value: Any, command_id: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _invalid(command_id, "an error that is not an object")
    code = value.get("error_code")
    if not isinstance(code, str) or not code:
        raise _invalid(command_id, "an error without an error_code")
    message = value.get("message", "")
    return {**value, "message": message if isinstance(message, str) else str(message)}


def _v2_logs(value: Any, command_id: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item if isinstance(item, str) else str(item) for item in value]
    raise _invalid(command_id, "spiff__logs that are not a list")


def normalise_v2(result: Mapping[str, Any], command_id: str) -> dict[str, Any]:
    """A v2 result made protocol-valid: missing ``body``/``mimetype``/``error``/``spiff__logs`` get
    their defaults (null, application/json, null, []); values of the wrong type that cannot be
    repaired without guessing (a non-integer ``http_status``, an ``error`` that is not an object)
    make it an ``invalid_command_result``."""
    envelope = dict(result)
    raw_response = envelope.get("command_response")
    if raw_response is None:
        raw_response = {}
    if not isinstance(raw_response, Mapping):
        raise _invalid(command_id, "a command_response that is not an object")
    command_response = dict(raw_response)
    command_response.setdefault("body", None)
    if not isinstance(command_response.get("mimetype"), str) or not command_response["mimetype"]:
        command_response["mimetype"] = JSON
    status = command_response.get("http_status")
    if status is not None and (type(status) is not int or not 100 <= status <= 599):
        raise _invalid(command_id, "an http_status that is not an integer from 100 to 599")
    if status is None:
        command_response.pop("http_status", None)
    headers = command_response.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        raise _invalid(command_id, "headers that are not an object")
    envelope["command_response"] = command_response
    envelope["command_response_version"] = 2  # the protocol's only v2 value
    envelope["error"] = _v2_error(envelope.get("error"), command_id)
    envelope["spiff__logs"] = _v2_logs(envelope.get("spiff__logs"), command_id)
    return envelope


def outcome_from_result(result: Any, command_id: str, *, accepted: bool = False) -> Outcome:
    """Turn what a (community) command returned into the answer the reference proxy gives.

    - v2 (``command_response_version`` > 1, or a ``command_response`` key): outer 200 (202 when
      the command was started through ``execute_async``), with all four envelope keys present.
    - legacy v1 (``response``/``status``/``mimetype``): passed through as the reference does:
      the ``status`` as the HTTP status, ``response`` as the body (JSON-encoded when it is not
      text), ``mimetype`` as the content type.
    """
    if not isinstance(result, Mapping):
        raise _invalid(command_id, f"{type(result).__name__} instead of a response mapping")
    version = result.get("command_response_version")
    if (isinstance(version, int) and version > 1) or "command_response" in result:
        envelope = normalise_v2(result, command_id)
        error = envelope["error"]
        return Outcome.of_command(
            202 if accepted else 200,
            dump_json(envelope, command_id),
            error["error_code"] if error else None,
            envelope["command_response"].get("http_status"),
        )
    if "response" in result:
        status = result.get("status", 200)
        try:
            status = int(status)
        except (TypeError, ValueError):
            raise _invalid(command_id, "a legacy status that is not a number") from None
        if not 100 <= status <= 599:
            raise _invalid(command_id, "a legacy status outside 100-599")
        response = result["response"]
        if isinstance(response, bytes):
            body = response
        elif isinstance(response, str):
            body = response.encode()
        else:
            body = dump_json(response, command_id)
        mimetype = result.get("mimetype")
        media_type = mimetype if isinstance(mimetype, str) and mimetype else JSON
        return Outcome.of_command(status, body, None, status, media_type)  # the legacy status is the HTTP one
    raise _invalid(command_id, "neither a v2 envelope nor a legacy response")
