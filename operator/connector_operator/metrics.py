"""The operator's Prometheus metrics, served at ``GET /metrics`` on its recheck port.

Reconciles by result and their duration, discovery requests by outcome and their latency, and the
Connectors by their Ready condition's status and reason (as last written by this operator).
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RESULTS = ("ready", "not_ready", "retry", "rejected", "error")


def _version() -> str:
    try:
        return version("spiff-connector-proxy")  # the distribution the operator ships in
    except PackageNotFoundError:
        return "unknown"


class _ConnectorsByReady(Collector):
    """``connector_operator_connectors{ready, reason}``: counted at scrape time from the last status
    this operator wrote for each Connector (a deleted one is forgotten)."""

    def __init__(self) -> None:
        self.ready: dict[str, tuple[str, str]] = {}  # namespace/name -> (status, reason)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "connector_operator_connectors", "Connectors by their Ready status and reason.", labels=["ready", "reason"]
        )
        counts: dict[tuple[str, str], int] = {}
        for state in self.ready.values():
            counts[state] = counts.get(state, 0) + 1
        for (status, reason), count in sorted(counts.items()):
            family.add_metric([status, reason], count)
        yield family


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reconciles = Counter(
            "connector_operator_reconciles",
            "Reconciles of one Connector, by result: ready, not_ready (converged, not Ready: suspended), "
            "retry (Ready=False, retried with backoff), rejected (invalid spec) or error (an unexpected failure).",
            ["result"],
            registry=self.registry,
        )
        for result in RESULTS:
            self.reconciles.labels(result)
        self.reconcile_seconds = Histogram(
            "connector_operator_reconcile_duration_seconds",
            "Time one reconcile took.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.discoveries = Counter(
            "connector_operator_discoveries",
            "Catalog discoveries (GET /v1/commands and /v1/auths of an endpoint), by outcome: ok or the "
            "failure's reason (Unreachable, DiscoveryTimeout, DiscoveryHttpError, InvalidCatalog, Unauthorized).",
            ["outcome"],
            registry=self.registry,
        )
        self.discovery_seconds = Histogram(
            "connector_operator_discovery_duration_seconds",
            "Time one discovery took.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        build = Gauge(
            "connector_operator_build_info", "Always 1: the version, as labels.", ["version", "python"],
            registry=self.registry,
        )  # fmt: skip
        build.labels(_version(), platform.python_version()).set(1)
        ProcessCollector(registry=self.registry)
        self._connectors = _ConnectorsByReady()
        self.registry.register(self._connectors)

    def connector_ready(self, key: str, status: str, reason: str) -> None:
        self._connectors.ready[key] = (status, reason)

    def keep_only(self, keys: set[str]) -> None:
        """Forget the Connectors not in ``keys`` (``namespace/name``): deleted ones."""
        for key in set(self._connectors.ready) - keys:
            del self._connectors.ready[key]
