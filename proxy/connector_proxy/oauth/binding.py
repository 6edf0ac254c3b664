"""Binding an OAuth flow to the browser that started it, with a short-lived cookie.

Without it, someone could start a flow, send the provider's sign-in link to somebody else and have
that person's account connected under their own spiff-arena session (the ``token`` in the sealed
redirect URL is theirs). The start answer sets ``spiff_oauth_<id>=<nonce>`` (HttpOnly,
SameSite=Lax so the provider's top-level redirect back carries it, Secure on https, living as long
as the state); the callback requires the cookie to match the nonce sealed in the state, and clears
it. Any replica can check it: the nonce travels in the state, the cookie with the browser.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request, cookie_parser
from starlette.responses import Response

from connector_proxy.oauth.errors import OAuthErrorCode, OAuthFlowError
from connector_proxy.oauth.state import FlowState

COOKIE_PREFIX = "spiff_oauth_"


def cookie_name(nonce: str) -> str:
    return COOKIE_PREFIX + nonce[:16]


def bind(response: Response, nonce: str, *, ttl: int, secure: bool) -> None:
    """Set the flow's cookie on the start answer."""
    response.set_cookie(cookie_name(nonce), nonce, max_age=ttl, path="/", secure=secure, httponly=True, samesite="lax")


def release(response: Response, nonce: str, *, secure: bool) -> None:
    """Clear the flow's cookie on the callback's answer."""
    response.delete_cookie(cookie_name(nonce), path="/", secure=secure, httponly=True, samesite="lax")


def check(request: Request, flow: FlowState) -> None:
    """``oauth_state_not_bound`` unless this browser holds the cookie of ``flow``."""
    presented = request.cookies.get(cookie_name(flow.nonce), "")
    if not hmac.compare_digest(presented.encode(), flow.nonce.encode()):
        raise OAuthFlowError(
            400,
            OAuthErrorCode.STATE_NOT_BOUND,
            "This sign-in was not started in this browser (or its cookie was blocked or has expired); "
            "start it again from spiff-arena in the same browser.",
        )


def flow_cookies(cookie_header: str | None) -> str | None:
    """The ``Cookie`` header to forward to a connector workload: the flow cookies only, never the
    browser's other cookies for this host."""
    if not cookie_header:
        return None
    cookies = cookie_parser(cookie_header)
    kept = [f"{name}={value}" for name, value in cookies.items() if name.startswith(COOKIE_PREFIX)]
    return "; ".join(kept) or None
