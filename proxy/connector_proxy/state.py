"""Per-process proxy state shared by the routers: the current registry and the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from connector_proxy.execution import Runtime
from connector_proxy.registry import Registry


@dataclass
class ProxyState:
    """``registry`` is replaced as a whole (one reference assignment) when connectors change."""

    registry: Registry
    runtime: Runtime

    def swap(self, registry: Registry) -> None:
        self.registry = registry


def proxy_state(request: Request) -> ProxyState:
    state: ProxyState = request.app.state.proxy
    return state
