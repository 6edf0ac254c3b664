"""Prometheus metrics: per-command requests, errors by code, latency; the registry revision; refused
forwards to url-sourced Connectors."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ProxyMetrics:
    """One set of metrics per app (its own CollectorRegistry, so several apps can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "connector_proxy_command_requests",
            "Commands dispatched through /v1/do, by command id and HTTP status.",
            ["command", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "connector_proxy_command_errors",
            "Failed /v1/do answers by command id and error_code.",
            ["command", "error_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "connector_proxy_command_duration_seconds",
            "Time to answer /v1/do, by command id.",
            ["command"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.revision = Gauge(
            "connector_proxy_registry_revision", "Revision of the registry being served.", registry=self.registry
        )
        self.commands = Gauge(
            "connector_proxy_registry_commands", "Commands in the registry being served.", registry=self.registry
        )
        self.forward_refused = Counter(
            "connector_proxy_forward_refused",
            "Forwarded /v1/do calls a url-sourced Connector's proxy answered 401 or 403, by Connector and status.",
            ["connector", "status"],
            registry=self.registry,
        )

    def observe(self, command: str, status: int, error_code: str | None, seconds: float) -> None:
        self.requests.labels(command, str(status)).inc()
        self.latency.labels(command).observe(seconds)
        if error_code is not None:
            self.errors.labels(command, error_code).inc()
