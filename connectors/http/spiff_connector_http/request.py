"""Validating command parameters and turning them into an :class:`httpx.Request`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from spiff_connector_http import errors
from spiff_connector_http.client import DEFAULT_TIMEOUT
from spiff_connector_http.urls import InvalidUrlError, display_url, parse_url

BodyFormat = Literal["json", "form", "raw"]

MIN_ATTEMPTS = 1
MAX_ATTEMPTS = 10
MAX_TIMEOUT = 300.0

_PRIMITIVES = (str, int, float, bool, type(None))


class InvalidRequestError(Exception):
    """The parameters cannot form a request; ``message`` holds no parameter values."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RequestOptions:
    """Everything a command passes to the shared implementation."""

    method: str
    url: str
    headers: Mapping[str, str] | None = None
    params: Mapping[str, Any] | None = None
    data: Any = None
    body_format: BodyFormat = "json"
    basic_auth_username: str | None = None
    basic_auth_password: str | None = None
    bearer_token: str | None = None
    attempts: int | None = 1
    timeout: float | None = None
    include_response_headers: bool = False
    follow_redirects: bool = True


@dataclass(frozen=True)
class PreparedRequest:
    """A validated request, ready to be sent (and re-sent) on the shared client."""

    method: str
    url: httpx.URL
    display_url: str
    headers: httpx.Headers
    body: dict[str, Any]
    auth: httpx.BasicAuth | None
    attempts: int
    timeout: float
    follow_redirects: bool
    secrets: tuple[str, ...] = field(default=())

    def build(self, client: httpx.AsyncClient) -> httpx.Request:
        try:
            return client.build_request(
                self.method,
                self.url,
                headers=self.headers,
                timeout=httpx.Timeout(self.timeout),
                **self.body,
            )
        except httpx.InvalidURL as exc:
            raise InvalidRequestError(errors.INVALID_URL, "url is not a valid URL") from exc
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(
                errors.INVALID_PARAMETERS,
                f"could not build the request ({type(exc).__name__}): check the types of headers, params and data",
            ) from exc


def clamp_attempts(attempts: int | None) -> int:
    if attempts is None:
        return MIN_ATTEMPTS
    return max(MIN_ATTEMPTS, min(MAX_ATTEMPTS, attempts))


def effective_timeout(timeout: float | None) -> float:
    """``None`` or a non-positive value means the default; values are capped at :data:`MAX_TIMEOUT`."""
    if timeout is None or timeout <= 0:
        return DEFAULT_TIMEOUT
    return min(float(timeout), MAX_TIMEOUT)


def _is_form_value(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(isinstance(item, _PRIMITIVES) for item in value)
    return isinstance(value, _PRIMITIVES)


def _is_flat_mapping(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(key, str) and _is_form_value(item) for key, item in value.items()
    )


def encode_body(data: Any, body_format: BodyFormat) -> dict[str, Any]:
    """The ``httpx`` keyword arguments carrying ``data`` as ``body_format``."""
    if data is None:
        return {}
    if body_format == "json":
        return {"json": data}
    if body_format == "form":
        if not _is_flat_mapping(data):
            raise InvalidRequestError(
                errors.INVALID_PARAMETERS,
                "body_format 'form' needs data to be an object of strings, numbers, booleans or lists of them",
            )
        return {"data": dict(data)}
    if body_format == "raw":
        if not isinstance(data, str | bytes):
            raise InvalidRequestError(errors.INVALID_PARAMETERS, "body_format 'raw' needs data to be a string")
        return {"content": data}
    raise InvalidRequestError(errors.INVALID_PARAMETERS, "body_format must be one of 'json', 'form', 'raw'")


def _secrets(options: RequestOptions, url: httpx.URL) -> tuple[str, ...]:
    """Values that must never show up in a message: credentials, the query string, header and param values."""
    found: list[str] = [
        options.basic_auth_password or "",
        options.bearer_token or "",
        url.password,
        url.query.decode("ascii", "replace"),
    ]
    found.extend(str(v) for v in (options.headers or {}).values())
    for value in (options.params or {}).values():
        if isinstance(value, list | tuple):
            found.extend(str(item) for item in value)
        else:
            found.append(str(value))
    return tuple(s for s in found if s)


def prepare(options: RequestOptions) -> PreparedRequest:
    """Validate ``options``; raises :class:`InvalidRequestError` (no request is made then)."""
    try:
        url = parse_url(options.url)
    except InvalidUrlError as exc:
        raise InvalidRequestError(errors.INVALID_URL, str(exc)) from exc

    if options.params:
        if not _is_flat_mapping(options.params):
            raise InvalidRequestError(
                errors.INVALID_PARAMETERS, "params must map names to strings, numbers, booleans or lists of them"
            )
        url = url.copy_merge_params(dict(options.params))

    if options.bearer_token and options.basic_auth_username is not None:
        raise InvalidRequestError(
            errors.INVALID_PARAMETERS, "use either basic_auth_username/basic_auth_password or bearer_token, not both"
        )

    try:
        headers = httpx.Headers(dict(options.headers or {}))
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(errors.INVALID_PARAMETERS, "headers must map names to string values") from exc
    if options.bearer_token:
        headers["Authorization"] = f"Bearer {options.bearer_token}"

    auth = None
    if options.basic_auth_username is not None:
        auth = httpx.BasicAuth(options.basic_auth_username, options.basic_auth_password or "")

    return PreparedRequest(
        method=options.method,
        url=url,
        display_url=display_url(url),
        headers=headers,
        body=encode_body(options.data, options.body_format),
        auth=auth,
        attempts=clamp_attempts(options.attempts),
        timeout=effective_timeout(options.timeout),
        follow_redirects=options.follow_redirects,
        secrets=_secrets(options, url),
    )
