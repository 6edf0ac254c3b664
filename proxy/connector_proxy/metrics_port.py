"""``/metrics`` on a port of its own (``CONNECTOR_PROXY_METRICS_PORT``).

The proxy then listens on both ports with the same app; this layer routes by the port a request
came in on. The metrics port answers ``GET /metrics`` and nothing else; the main port (the one
spiff-arena, browsers and an Ingress reach) no longer answers ``/metrics``. So the metrics, open
like liveness, are published only where a scraper reaches them.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

METRICS_PATH = "/metrics"
_NOT_FOUND = b'{"detail":"Not Found"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_NOT_FOUND)).encode())]


def arrived_on(scope: Scope) -> int | None:
    server = scope.get("server")
    return server[1] if server else None


class MetricsPort:
    def __init__(self, app: ASGIApp, metrics_port: int) -> None:
        self.app = app
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            on_metrics_port = arrived_on(scope) == self.metrics_port
            if on_metrics_port != (scope["path"] == METRICS_PATH):
                await send({"type": "http.response.start", "status": 404, "headers": _HEADERS})
                await send({"type": "http.response.body", "body": _NOT_FOUND})
                return
        await self.app(scope, receive, send)
