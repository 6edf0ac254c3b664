"""Keeping a worker's event loop responsive, and measuring how responsive it is.

- :func:`freeze_startup_objects`: after start-up, the objects built so far (imported modules, the
  registry, the app) move to the collector's permanent generation (:func:`gc.freeze`). They live as
  long as the worker, and full collections no longer walk them: a full collection of a proxy with
  1,000 commands paused the loop for over 300 ms, and one after the freeze takes a few.
- :class:`LoopLagMonitor`: a task that sleeps ``interval`` seconds and records how late it woke
  (``connector_proxy_event_loop_lag_seconds``, and the largest ever seen in
  ``connector_proxy_event_loop_lag_max_seconds``): a pause of the loop delays every request the
  worker holds by as much.
"""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import CollectorRegistry, Gauge, Histogram

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


_frozen = 0  # objects the last freeze_startup_objects() froze


def freeze_startup_objects() -> None:
    """Collect what start-up left over, then freeze every object that remains."""
    global _frozen
    gc.collect()
    gc.freeze()
    _frozen = gc.get_freeze_count()


def frozen_objects() -> int:
    """How many objects start-up froze, counted once when it froze them: ``gc.get_freeze_count()``
    walks every frozen object (in CPython 3.11 it is a linked list's length), 11 ms of a serve
    worker's event loop, far too long for each metrics scrape."""
    return _frozen


class LoopLagMonitor:
    def __init__(self, registry: CollectorRegistry, interval: float = 0.05) -> None:
        self.interval = interval
        self.largest = 0.0
        self.lag = Histogram(
            "connector_proxy_event_loop_lag_seconds",
            f"How late the event loop ran a task due every {interval:g} s: a pause of the loop (a garbage "
            "collection, a blocking call) delays every request of the worker by as much.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        maximum = Gauge(
            "connector_proxy_event_loop_lag_max_seconds",
            "The largest event loop lag seen since the worker started.",
            registry=registry,
        )
        maximum.set_function(lambda: self.largest)
        frozen = Gauge(
            "connector_proxy_gc_frozen_objects",
            "Objects frozen out of the garbage collector's reach after start-up (0: CONNECTOR_PROXY_GC_FREEZE off).",
            registry=registry,
        )
        frozen.set_function(frozen_objects)

    def record(self, lag: float) -> None:
        lag = max(lag, 0.0)
        self.lag.observe(lag)
        self.largest = max(self.largest, lag)

    async def run(self) -> None:
        while True:
            due = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)
            self.record(time.perf_counter() - due)
