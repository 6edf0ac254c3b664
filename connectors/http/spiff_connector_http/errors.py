"""Stable error codes of the HTTP connector (they become BPMN error codes in spiff-arena)."""

from __future__ import annotations

from typing import Final

INVALID_URL: Final = "InvalidUrl"
"""The URL is not an absolute ``http``/``https`` URL with a host; no request was made."""

INVALID_PARAMETERS: Final = "InvalidParameters"
"""The parameters cannot form a request (wrong body type for ``body_format``, two kinds of auth, ...)."""

INVALID_RESPONSE_BODY: Final = "InvalidResponseBody"
"""The upstream answered < 400 but its JSON/XML body does not parse (or cannot be decoded)."""

CONNECTION_ERROR: Final = "HttpConnectionError"
"""Connecting or talking to the upstream failed (DNS, refused, reset, TLS, protocol) after all attempts."""

TIMEOUT: Final = "HttpTimeout"
"""The upstream did not answer within ``timeout`` seconds, on every attempt."""

TOO_MANY_REDIRECTS: Final = "HttpTooManyRedirects"
"""Redirects were followed more than the client's limit (20)."""

CONNECTION_ERROR_STATUS: Final = 502
TIMEOUT_STATUS: Final = 504
INVALID_REQUEST_STATUS: Final = 400


def http_error(status: int) -> str:
    """``HttpError404`` and friends: the upstream answered with ``status`` >= 400."""
    return f"HttpError{status}"
