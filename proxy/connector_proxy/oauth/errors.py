"""Stable error codes of the browser OAuth flow (``/v1/auth/...``), documented in docs/errors.md.

These answers go to a person's browser, not to spiff-arena's task engine, so their shape is a
plain ``{"error": {"error_code", "message"}}`` object. Messages never contain client secrets,
authorization codes, tokens, the state, or the query of the redirect URL (it carries
spiff-arena's session token).
"""

from __future__ import annotations

from enum import StrEnum

import orjson
from starlette.responses import Response

# The browser must never cache or leak (Referer) a page of the flow: its URL holds codes and state.
NO_STORE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


class OAuthErrorCode(StrEnum):
    AUTH_NOT_FOUND = "auth_not_found"
    OAUTH_NOT_SUPPORTED = "oauth_not_supported"
    OAUTH_NOT_CONFIGURED = "oauth_not_configured"
    REDIRECT_NOT_ALLOWED = "oauth_redirect_not_allowed"
    STATE_INVALID = "oauth_state_invalid"
    STATE_EXPIRED = "oauth_state_expired"
    STATE_MISMATCH = "oauth_state_mismatch"
    STATE_NOT_BOUND = "oauth_state_not_bound"
    PROVIDER_ERROR = "oauth_provider_error"
    TOKEN_EXCHANGE_FAILED = "oauth_token_exchange_failed"  # noqa: S105 - an error code
    # Kubernetes mode, forwarding to the connector workload (same codes as /v1/do uses).
    CONNECTOR_UNAVAILABLE = "connector_unavailable"
    CONNECTOR_TIMEOUT = "connector_timeout"


class OAuthFlowError(Exception):
    """A step of the flow that cannot go on; rendered as a JSON error page.

    ``message`` must never contain secrets, codes, tokens or the redirect URL's query.
    """

    def __init__(self, status: int, code: OAuthErrorCode, message: str) -> None:
        super().__init__(code.value)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        body = orjson.dumps({"error": {"error_code": self.code.value, "message": self.message}})
        return Response(body, status_code=self.status, media_type="application/json", headers=NO_STORE_HEADERS)
