"""The optional shared API key (header ``Spiff-Connector-Proxy-Api-Key``), as pure ASGI middleware."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from connector_proxy.contract import API_KEY_HEADER

HEADER = API_KEY_HEADER.lower().encode()
# /metrics stays open like the liveness endpoints (Prometheus cannot send this header); it carries
# command ids and counts only.
PROTECTED_PREFIXES = ("/v1/commands", "/v1/auths", "/v1/do/", "/v1/do", "/v1/status")
_UNAUTHORIZED_BODY = b'{"error":"Missing or invalid Spiff-Connector-Proxy-Api-Key header."}'


def is_protected(path: str) -> bool:
    return any(
        path == p or path.startswith(p + "/") or (p.endswith("/") and path.startswith(p)) for p in PROTECTED_PREFIXES
    )


class ApiKeyMiddleware:
    """Answers ``401 {"error": ...}`` on protected paths unless the header matches
    (constant-time comparison). Liveness, docs and the browser OAuth flow stay open."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        presented = b""
        for name, value in scope["headers"]:
            if name == HEADER:
                presented = value
                break
        if hmac.compare_digest(presented, self.expected):
            await self.app(scope, receive, send)
            return
        await send_unauthorized(send, _UNAUTHORIZED_BODY, b'ApiKey header="Spiff-Connector-Proxy-Api-Key"')


async def send_unauthorized(send: Send, body: bytes, challenge: bytes) -> None:
    """A ``401`` with a JSON ``body`` and the ``WWW-Authenticate`` ``challenge``."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", challenge),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
