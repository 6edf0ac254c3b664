"""Validating command parameters and turning them into the request to send
(a :class:`~spiff_connector_http.redirects.Hop`).

Parameters reach the commands as the JSON spiff-arena sent, unchecked; what the community
``connector-http`` (on ``requests``) accepts is accepted here and encoded the same way, and what
``requests`` refuses is refused with the code it raises (:mod:`spiff_connector_http.errors`).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from spiff_connector_http import errors
from spiff_connector_http.client import DEFAULT_HEADERS, DEFAULT_TIMEOUT
from spiff_connector_http.redirects import Hop, origin_of
from spiff_connector_http.urls import InvalidUrlError, display_url, parse_url
from spiff_connector_sdk.tracing import trace_headers

BodyFormat = Literal["json", "form", "raw"]

MIN_ATTEMPTS = 1
MAX_ATTEMPTS = 10
MAX_TIMEOUT = 300.0
DEADLINE_FACTOR = 2
"""An attempt is abandoned after ``DEADLINE_FACTOR * timeout`` seconds in total."""

METHODS_WITH_DEFAULT_BODY = frozenset({"POST", "PUT", "PATCH"})
"""Methods that send ``{}`` as JSON when ``data`` is null (the community connector's ``data or {}``)."""

_PRIMITIVES = (str, int, float, bool)
# requests' header checks (requests.utils.check_header_validity).
_HEADER_NAME = re.compile(r"^[^:\s][^:\r\n]*$")
_HEADER_VALUE = re.compile(r"^\S[^\r\n]*$|^$")


class InvalidRequestError(Exception):
    """The parameters cannot form a request; ``message`` holds no parameter values."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RequestOptions:
    """Everything a command passes to the shared implementation, as the caller sent it."""

    method: str
    url: Any
    headers: Any = None
    params: Any = None
    data: Any = None
    body_format: Any = "json"
    basic_auth_username: Any = None
    basic_auth_password: Any = None
    bearer_token: Any = None
    attempts: Any = 1
    timeout: Any = None
    include_response_headers: bool = False
    follow_redirects: bool = True


@dataclass(frozen=True)
class PreparedRequest:
    """A validated request, ready to be sent (and re-sent) on the shared client.

    ``headers`` are the caller's (names lower-cased, a name given in several cases sent once with
    the values joined by ``", "``, as httpx sent them), with the ``Content-Type`` JSON gets and the
    ``Authorization`` of the auth parameters; ``body_headers`` describe ``body``;
    ``url_authorization`` is the Basic ``Authorization`` for credentials in the URL."""

    method: str
    url: httpx.URL
    display_url: str
    headers: dict[str, str]
    body: bytes | None
    attempts: int
    timeout: float
    follow_redirects: bool
    secrets: tuple[str, ...] = field(default=())
    max_response_bytes: int = errors.DEFAULT_MAX_RESPONSE_BYTES
    body_headers: dict[str, str] = field(default_factory=dict)
    url_authorization: str | None = None

    @property
    def deadline(self) -> float:
        """Seconds an attempt may take in total."""
        return self.timeout * DEADLINE_FACTOR

    def build(self) -> Hop:
        """The call's first request, with every header it sends (in httpx's order) and the call's
        trace headers, unless the diagram sets its own."""
        given = self.headers
        headers: dict[str, str] = {} if "host" in given else {"host": self.url.netloc.decode("ascii")}
        if self.body is None and self.method in METHODS_WITH_DEFAULT_BODY and "content-length" not in given:
            headers["content-length"] = "0"  # as httpx sent it
        for name, value in DEFAULT_HEADERS:
            if name not in given:
                headers[name] = value
        headers.update(given)
        for name, value in trace_headers().items():
            if name.lower() not in given:
                headers[name.lower()] = value
        for name, value in self.body_headers.items():
            headers.setdefault(name, value)
        if self.url_authorization is not None:
            headers["authorization"] = self.url_authorization
        return Hop(self.method, self.url, headers, self.body, origin_of(self.url))


def clamp_attempts(attempts: Any) -> int:
    """The community rule: anything but an int from 1 to 10 means 1 attempt."""
    if not isinstance(attempts, int) or attempts < MIN_ATTEMPTS or attempts > MAX_ATTEMPTS:
        return MIN_ATTEMPTS
    return int(attempts)  # True is 1


def effective_timeout(timeout: Any) -> float:
    """Not a positive number means the default; values are capped at :data:`MAX_TIMEOUT`."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        return DEFAULT_TIMEOUT
    return min(float(timeout), MAX_TIMEOUT)


def encode_params(params: Any) -> str:
    """``params`` as ``requests`` encodes them: a list repeats the name, a null is left out,
    ``True`` is ``True``; nested objects are refused."""
    if not params:
        return ""
    if not isinstance(params, Mapping):
        raise InvalidRequestError(errors.INVALID_PARAMETERS, "params must be an object")
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is None:
                continue
            if not isinstance(key, str) or not isinstance(item, _PRIMITIVES):
                raise InvalidRequestError(
                    errors.INVALID_PARAMETERS,
                    "params must map names to strings, numbers, booleans, nulls or lists of them",
                )
            pairs.append((key, item))
    return urllib.parse.urlencode(pairs, doseq=True)


def with_params(url: httpx.URL, params: Any) -> httpx.URL:
    """``url`` with ``params`` appended to its query string (a name already there is kept, as ``requests`` does)."""
    encoded = encode_params(params)
    if not encoded:
        return url
    query = url.query.decode("ascii")
    try:
        return url.copy_with(query=(f"{query}&{encoded}" if query else encoded).encode("ascii"))
    except httpx.InvalidURL as exc:  # httpx's bound: 65,536 characters per URL component
        raise InvalidRequestError(errors.INVALID_URL, "the URL's query with params is too long to send") from exc


def _check_header_part(part: Any, pattern: re.Pattern[str], kind: str) -> str:
    if isinstance(part, bytes):
        part = part.decode("latin-1")
    if not isinstance(part, str):
        raise InvalidRequestError(errors.INVALID_HEADER, f"header {kind}s must be strings")
    if not pattern.match(part):
        raise InvalidRequestError(
            errors.INVALID_HEADER,
            f"a header {kind} has leading whitespace, a line break{' or a colon' if kind == 'name' else ''}",
        )
    return part


def build_headers(headers: Any) -> dict[str, str]:
    """``headers`` checked as ``requests`` checks them; a header whose value is null is left out.

    Names are lower-cased; names that differ only in case become one header, the values joined
    with ``", "`` (what httpx sent). Values are sent as UTF-8 (see the README)."""
    if not headers:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidRequestError(errors.INVALID_PARAMETERS, "headers must be an object")
    checked = [
        (_check_header_part(name, _HEADER_NAME, "name"), _check_header_part(value, _HEADER_VALUE, "value"))
        for name, value in headers.items()
        if value is not None
    ]
    merged: dict[str, str] = {}
    for name, value in checked:
        if not name.isascii():
            raise InvalidRequestError(errors.UNICODE_ENCODE_ERROR, "header names must be ASCII")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise InvalidRequestError(errors.UNICODE_ENCODE_ERROR, "header values must be Latin-1 text") from exc
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _latin1(value: Any) -> bytes:
    text = value if isinstance(value, str | bytes) else str(value)
    return text if isinstance(text, bytes) else text.encode("latin-1")


def basic_authorization(username: Any, password: Any) -> str:
    """The ``Authorization`` value ``requests`` sends: Latin-1 credentials, base64-encoded."""
    try:
        credentials = _latin1(username) + b":" + _latin1(password)
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            errors.UNICODE_ENCODE_ERROR, "basic_auth_username and basic_auth_password must be Latin-1 text"
        ) from exc
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def _is_flat_mapping(value: Any) -> bool:
    def form_value(item: Any) -> bool:
        if isinstance(item, list | tuple):
            return all(isinstance(x, _PRIMITIVES) or x is None for x in item)
        return isinstance(item, _PRIMITIVES) or item is None

    return isinstance(value, Mapping) and all(isinstance(k, str) and form_value(v) for k, v in value.items())


def primitive_text(value: Any) -> str:
    """A form value as httpx encoded it: ``true``/``false`` for booleans, empty for null."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def encode_form(data: Mapping[str, Any]) -> bytes:
    """``data`` as ``application/x-www-form-urlencoded``, byte for byte as httpx encoded ``data=``."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        items = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, primitive_text(item)) for item in items)
    return urllib.parse.urlencode(pairs, doseq=True).encode("utf-8")


Body = tuple[bytes | None, dict[str, str]]
"""The bytes to send (None: no body) and the headers describing them."""


def _content(content: bytes, content_type: str | None = None) -> Body:
    headers = {"content-length": str(len(content))} if content else {}
    if content_type is not None:
        headers["content-type"] = content_type
    return content or None, headers


def encode_body(method: str, data: Any, body_format: Any, headers: dict[str, str]) -> Body:
    """``data`` encoded as ``body_format`` (None: no body), with its ``Content-Length`` (and a
    form's ``Content-Type``); sets ``Content-Type`` in ``headers`` for JSON."""
    if body_format not in ("json", "form", "raw"):
        raise InvalidRequestError(errors.INVALID_PARAMETERS, "body_format must be one of 'json', 'form', 'raw'")
    if data is None and body_format == "json" and method in METHODS_WITH_DEFAULT_BODY:
        data = {}
    if data is None:
        return None, {}
    if body_format == "json":
        try:
            content = json.dumps(data, allow_nan=False).encode("utf-8")  # requests' encoding of json=
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(
                errors.INVALID_JSON_ERROR, "data cannot be sent as JSON (NaN, infinity or not JSON data)"
            ) from exc
        headers.setdefault("content-type", "application/json")
        return _content(content)
    if body_format == "form":
        if not _is_flat_mapping(data):
            raise InvalidRequestError(
                errors.INVALID_PARAMETERS,
                "body_format 'form' needs data to be an object of strings, numbers, booleans or lists of them",
            )
        form = encode_form({k: v for k, v in data.items() if v is not None})
        return _content(form, "application/x-www-form-urlencoded")
    if not isinstance(data, str | bytes):
        raise InvalidRequestError(errors.INVALID_PARAMETERS, "body_format 'raw' needs data to be a string")
    return _content(data.encode("utf-8") if isinstance(data, str) else data)


def _flat_strings(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _flat_strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _flat_strings(item)]
    return [] if value is None else [str(value)]


def _secrets(options: RequestOptions, url: httpx.URL) -> tuple[str, ...]:
    """Values that must never show up in a message: credentials, the query string, header and param values."""
    found = [
        *_flat_strings(options.basic_auth_password),
        *_flat_strings(options.bearer_token),
        url.password,
        url.query.decode("ascii", "replace"),
        *_flat_strings(options.headers),
        *_flat_strings(options.params),
    ]
    return tuple(s for s in found if s)


def bearer_authorization(token: Any) -> str:
    """``Bearer <token>``, checked like any header value."""
    if not isinstance(token, str):
        raise InvalidRequestError(errors.INVALID_PARAMETERS, "bearer_token must be a string")
    value = _check_header_part(f"Bearer {token}", _HEADER_VALUE, "value")
    if not value.isascii():
        raise InvalidRequestError(errors.UNICODE_ENCODE_ERROR, "bearer_token must be ASCII text")
    return value


def url_authorization(url: httpx.URL) -> str | None:
    """The Basic ``Authorization`` for credentials in ``url`` (UTF-8, percent-decoded), as httpx sent it."""
    if not url.username and not url.password:
        return None
    credentials = url.username.encode("utf-8") + b":" + url.password.encode("utf-8")
    return "Basic " + base64.b64encode(credentials).decode("ascii")


MAX_RESPONSE_CONFIG_KEY = "HTTP_MAX_RESPONSE_BYTES"


def max_response_bytes(config: Mapping[str, Any]) -> int:
    """The response size limit from the proxy's ``config`` (a positive integer, or a string of one)."""
    value = config.get(MAX_RESPONSE_CONFIG_KEY)
    try:
        limit = int(value) if value is not None and not isinstance(value, bool) else 0
    except (TypeError, ValueError):
        limit = 0
    return limit if limit > 0 else errors.DEFAULT_MAX_RESPONSE_BYTES


def prepare(options: RequestOptions, config: Mapping[str, Any] | None = None) -> PreparedRequest:
    """Validate ``options`` (``config``: the proxy's, for the response size limit); raises
    :class:`InvalidRequestError` (no request is made then).

    The checks run in ``requests``' order (URL and params, headers, body, auth), so when several
    parameters are wrong the error is the one the community connector reports."""
    try:
        url = parse_url(options.url)
    except InvalidUrlError as exc:
        raise InvalidRequestError(exc.code, exc.message) from exc
    url = with_params(url, options.params)
    headers = build_headers(options.headers)
    body, body_headers = encode_body(options.method, options.data, options.body_format, headers)

    secrets = _secrets(options, url)
    basic = options.basic_auth_username is not None and options.basic_auth_password is not None
    if basic and options.bearer_token:
        raise InvalidRequestError(
            errors.INVALID_PARAMETERS, "use either basic_auth_username/basic_auth_password or bearer_token, not both"
        )
    if basic:
        headers["authorization"] = basic_authorization(options.basic_auth_username, options.basic_auth_password)
    elif options.bearer_token:
        headers["authorization"] = bearer_authorization(options.bearer_token)
    if basic or options.bearer_token:
        url = url.copy_with(userinfo=b"")  # the auth parameters win over credentials in the URL

    return PreparedRequest(
        method=options.method,
        url=url,
        display_url=display_url(url),
        headers=headers,
        body=body,
        body_headers=body_headers,
        url_authorization=url_authorization(url),
        attempts=clamp_attempts(options.attempts),
        timeout=effective_timeout(options.timeout),
        follow_redirects=options.follow_redirects,
        secrets=secrets,
        max_response_bytes=max_response_bytes(config or {}),
    )
