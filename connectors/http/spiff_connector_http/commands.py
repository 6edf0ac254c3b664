"""The six HTTP commands: fully annotated signatures (the proxy builds the catalog from them) over
the shared :func:`~spiff_connector_http.execute.execute`. Two signatures serve all six: one for the
methods without a body (GET, HEAD), one for those with one.

Parameters are those of the community ``connector-http`` ``*RequestV2``
commands plus ``bearer_token``, ``timeout``, ``body_format`` and
``include_response_headers`` (and ``attempts``/``params`` on every command).
GET and HEAD take no body, like the community commands; POST, PUT and PATCH
send ``{}`` as JSON when ``data`` is null, as they do. Redirects are followed
for every method but HEAD (as ``requests`` does, which the community connector
uses). Values arrive unchecked (the proxy passes the JSON on as it came):
:mod:`spiff_connector_http.request` checks them as ``requests`` would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from spiff_connector_http.execute import execute
from spiff_connector_http.request import BodyFormat, RequestOptions
from spiff_connector_sdk import Context, Param, Result

Url = Annotated[
    str,
    Param(
        "Absolute http:// or https:// URL to call; a query string in it is kept and merged with params.",
        examples=("https://api.example.com/v1/items",),
    ),
]
Headers = Annotated[
    dict[str, str] | None, Param("Request headers, name to value; a header whose value is null is not sent.")
]
Params = Annotated[
    dict[str, Any] | None,
    Param(
        "Query string parameters appended to the URL's own; a list value repeats the parameter, a null one is left out."
    ),
]
Data = Annotated[
    Any | None,
    Param("Request body, encoded as body_format says; when null, POST, PUT and PATCH send {} as JSON, DELETE no body."),
]
Format = Annotated[
    BodyFormat,
    Param(
        "How data is sent: 'json' (JSON, Content-Type application/json), 'form' "
        "(application/x-www-form-urlencoded; data must be an object) or 'raw' (data is a string sent as is; "
        "set Content-Type in headers)."
    ),
]
BasicUser = Annotated[
    str | None, Param("User name for HTTP Basic authentication (used when basic_auth_password is set too).")
]
BasicPassword = Annotated[str | None, Param("Password for HTTP Basic authentication.", secret=True)]
Bearer = Annotated[
    str | None,
    Param("Token sent as 'Authorization: Bearer <token>'; cannot be combined with basic auth.", secret=True),
]
Attempts = Annotated[
    int | None,
    Param(
        "Attempts in total when the server answers 5xx, the connection fails or times out "
        "(an integer from 1 to 10; anything else means 1; waits 0.1 s, doubling up to 1 s, between attempts)."
    ),
]
Timeout = Annotated[
    float | None,
    Param(
        "Seconds to wait for the connection and for each read of the answer (default 30, at most 300); "
        "an attempt is abandoned after twice that in total."
    ),
]
IncludeHeaders = Annotated[bool, Param("Return the response headers (lower-cased names) as the result's headers.")]


CommandFunc = Callable[..., Awaitable[Result]]


def _named(func: CommandFunc, name: str, doc: str) -> CommandFunc:
    """Give a generated command the module-level name it is exported under, and its description."""
    func.__name__ = func.__qualname__ = name
    func.__doc__ = doc
    return func


def _without_body(method: str, name: str, doc: str, *, follow_redirects: bool = True) -> CommandFunc:
    """A command for a method that sends no body (GET, HEAD), like the community commands."""

    async def command(
        ctx: Context,
        *,
        url: Url,
        headers: Headers = None,
        params: Params = None,
        basic_auth_username: BasicUser = None,
        basic_auth_password: BasicPassword = None,
        bearer_token: Bearer = None,
        attempts: Attempts = 1,
        timeout: Timeout = None,  # noqa: ASYNC109 - the request's own timeout, applied per attempt
        include_response_headers: IncludeHeaders = False,
    ) -> Result:
        options = RequestOptions(
            method=method,
            url=url,
            headers=headers,
            params=params,
            basic_auth_username=basic_auth_username,
            basic_auth_password=basic_auth_password,
            bearer_token=bearer_token,
            attempts=attempts,
            timeout=timeout,
            include_response_headers=include_response_headers,
            follow_redirects=follow_redirects,
        )
        return await execute(ctx, options)

    return _named(command, name, doc)


def _with_body(method: str, name: str, doc: str) -> CommandFunc:
    """A command for a method that may send a body (POST, PUT, PATCH, DELETE)."""

    async def command(
        ctx: Context,
        *,
        url: Url,
        headers: Headers = None,
        params: Params = None,
        data: Data = None,
        body_format: Format = "json",
        basic_auth_username: BasicUser = None,
        basic_auth_password: BasicPassword = None,
        bearer_token: Bearer = None,
        attempts: Attempts = 1,
        timeout: Timeout = None,  # noqa: ASYNC109 - the request's own timeout, applied per attempt
        include_response_headers: IncludeHeaders = False,
    ) -> Result:
        options = RequestOptions(
            method=method,
            url=url,
            headers=headers,
            params=params,
            data=data,
            body_format=body_format,
            basic_auth_username=basic_auth_username,
            basic_auth_password=basic_auth_password,
            bearer_token=bearer_token,
            attempts=attempts,
            timeout=timeout,
            include_response_headers=include_response_headers,
        )
        return await execute(ctx, options)

    return _named(command, name, doc)


get_request = _without_body(
    "GET",
    "get_request",
    "Send an HTTP GET request and return the parsed response (JSON, XML as a dict, or raw text).",
)
head_request = _without_body(
    "HEAD",
    "head_request",
    "Send an HTTP HEAD request (redirects are not followed) and return the status and, on request, the headers.",
    follow_redirects=False,
)
post_request = _with_body(
    "POST", "post_request", "Send an HTTP POST request with an optional body and return the parsed response."
)
put_request = _with_body(
    "PUT", "put_request", "Send an HTTP PUT request with an optional body and return the parsed response."
)
patch_request = _with_body(
    "PATCH", "patch_request", "Send an HTTP PATCH request with an optional body and return the parsed response."
)
delete_request = _with_body(
    "DELETE", "delete_request", "Send an HTTP DELETE request with an optional body and return the parsed response."
)


COMMANDS = {
    "GetRequestV2": get_request,
    "HeadRequestV2": head_request,
    "PostRequestV2": post_request,
    "PutRequestV2": put_request,
    "PatchRequestV2": patch_request,
    "DeleteRequestV2": delete_request,
}
