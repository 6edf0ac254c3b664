"""Per-process proxy state shared by the routers: the current registry, the runtime, the client
to connector workloads, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from connector_proxy.execution import Runtime
from connector_proxy.kubernetes.forwarding import Forwarder
from connector_proxy.kubernetes.watch_state import WatchState
from connector_proxy.metrics import ProxyMetrics
from connector_proxy.registry import Registry
from connector_proxy.tracing import Tracing


@dataclass
class ProxyState:
    """``registry`` is replaced as a whole (one reference assignment) when connectors change, so a
    request sees the old catalog or the new one, never a mix."""

    registry: Registry
    runtime: Runtime
    forwarder: Forwarder = field(default_factory=Forwarder)  # the one pooled client to workloads
    metrics: ProxyMetrics = field(default_factory=ProxyMetrics)
    tracing: Tracing = field(default_factory=Tracing)
    watch_state: WatchState | None = None

    def __post_init__(self) -> None:
        self.swap(self.registry)

    def swap(self, registry: Registry) -> None:
        self.registry = registry
        self.metrics.revision.set(registry.revision)
        self.metrics.commands.set(len(registry.commands))

    @property
    def ready(self) -> bool:
        """Serving: always in embedded mode; in Kubernetes mode once a first list succeeded."""
        return self.watch_state is None or self.watch_state.synced


def proxy_state(request: Request) -> ProxyState:
    state: ProxyState = request.app.state.proxy
    return state
