"""Prometheus metrics: every /v1/do outcome by command and error_code, latency, calls in flight; the
registry; refused forwards to url-sourced Connectors; build and process facts.

Label values stay bounded: a command id the registry does not hold is counted as ``unknown``, and
a command's error codes beyond :data:`MAX_ERROR_CODES` distinct ones as ``other`` (a command can
raise any exception class, each a code).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from connector_proxy import __version__
from connector_proxy.event_loop import LoopLagMonitor
from connector_proxy.outcome import SAFE_CODE

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
UNKNOWN_COMMAND = "unknown"
OTHER_ERROR = "other"
MAX_ERROR_CODES = 20


class WatchLike(Protocol):
    synced: bool
    connected: bool
    last_sync: float | None


@dataclass
class _CommandSeries:
    """One command's series, looked up once (``labels()`` takes a lock and hashes every call)."""

    latency: Histogram
    in_flight: Gauge
    requests: dict[tuple[int, str], Counter] = field(default_factory=dict)
    errors: dict[tuple[str, str], Counter] = field(default_factory=dict)  # admitted codes only
    codes: set[str] = field(default_factory=set)


class ProxyMetrics:
    """One set of metrics per app (its own CollectorRegistry, so several apps can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "connector_proxy_command_requests",
            "/v1/do calls by command id, HTTP status and outcome (success, command_error, dispatch_error).",
            ["command", "status", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "connector_proxy_command_errors",
            "/v1/do calls that failed, by command id, outcome and error_code: a command that ran and failed "
            "(its v2 error's code, or http_<status> for an http_status of 300 or more) or one not dispatched.",
            ["command", "outcome", "error_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "connector_proxy_command_duration_seconds",
            "Time to answer /v1/do, by command id.",
            ["command"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "connector_proxy_commands_in_flight",
            "/v1/do calls being answered now, by command id.",
            ["command"],
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
        build = Gauge(
            "connector_proxy_build_info",
            "Always 1: the proxy's version and Python's, as labels.",
            ["version", "python"],
            registry=self.registry,
        )
        build.labels(__version__, platform.python_version()).set(1)
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.loop_lag = LoopLagMonitor(self.registry)  # its task runs in the app's lifespan
        self._series: dict[str, _CommandSeries] = {}
        self.registry_stale = Gauge(
            "connector_proxy_registry_stale",
            "Kubernetes mode: 1 while the registry may be out of date (no first list yet, or the watch of "
            "Connectors is disconnected: the last good registry is served), else 0.",
            registry=self.registry,
        )
        self.seconds_since_sync = Gauge(
            "connector_proxy_registry_seconds_since_sync",
            "Kubernetes mode: seconds since the last successful list or watch event of Connectors.",
            registry=self.registry,
        )

    def follow_watch(self, watch: WatchLike) -> None:
        """Read the Kubernetes watch's state at each scrape (Kubernetes mode only)."""
        self.registry_stale.set_function(lambda: 0.0 if watch.synced and watch.connected else 1.0)
        self.seconds_since_sync.set_function(
            lambda: -1.0 if watch.last_sync is None else time.monotonic() - watch.last_sync
        )

    def _of(self, command: str) -> _CommandSeries:
        series = self._series.get(command)
        if series is None:
            series = _CommandSeries(latency=self.latency.labels(command), in_flight=self.in_flight.labels(command))
            self._series[command] = series
        return series

    def started(self, command: str) -> None:
        self._of(command).in_flight.inc()

    def observe(
        self, command: str, status: int, outcome: str, error_code: str | None, seconds: float, *, started: bool = True
    ) -> None:
        """One answered call (``started``: :meth:`started` was called for it)."""
        series = self._of(command)
        if started:
            series.in_flight.dec()
        series.latency.observe(seconds)
        request = series.requests.get((status, outcome))
        if request is None:
            request = series.requests[(status, outcome)] = self.requests.labels(command, str(status), outcome)
        request.inc()
        if error_code is None:
            return
        error = series.errors.get((outcome, error_code))
        if error is None:
            admitted = error_code in series.codes or (
                len(series.codes) < MAX_ERROR_CODES and SAFE_CODE.match(error_code) is not None
            )
            error = self.errors.labels(command, outcome, error_code if admitted else OTHER_ERROR)
            if admitted:
                series.codes.add(error_code)
                series.errors[(outcome, error_code)] = error
        error.inc()
