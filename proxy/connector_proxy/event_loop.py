"""Keeping a worker's event loop responsive, and measuring how responsive it is.

- :func:`freeze_startup_objects`: after start-up, the objects built so far (imported modules, the
  registry, the app) move to the collector's permanent generation (:func:`gc.freeze`). They live as
  long as the worker, and full collections no longer walk them: a full collection of a proxy with
  1,000 commands paused the loop for over 300 ms, and one after the freeze takes a few.
- :class:`LoopLagMonitor`: a task that sleeps ``interval`` seconds and records how late it woke
  (``connector_proxy_event_loop_lag_seconds``, and the largest ever seen in
  ``connector_proxy_event_loop_lag_max_seconds``): a pause of the loop delays every request the
  worker holds by as much. Where Linux says how long the loop's thread waited for a CPU
  (``/proc/thread-self/schedstat``), each sample less that wait since the task went to sleep is the
  loop's own lag (``connector_proxy_event_loop_own_lag_seconds``): the pause its own work or a
  blocking call caused, apart from a busy machine (or a CPU limit) leaving the worker no CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time

from prometheus_client import CollectorRegistry, Gauge, Histogram

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


SCHEDSTAT = "/proc/thread-self/schedstat"  # CPU time, time runnable but waiting for a CPU (ns), slices
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


def cpu_wait_reader(path: str = SCHEDSTAT) -> int | None:
    """A descriptor of the calling thread's scheduler statistics (see :func:`cpu_wait`), None where
    the kernel has none."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    if cpu_wait(descriptor) is None:
        os.close(descriptor)
        return None
    return descriptor


def cpu_wait(descriptor: int) -> float | None:
    """Seconds the thread of ``descriptor`` (:func:`cpu_wait_reader`) has spent runnable, waiting for a CPU."""
    try:
        return int(os.pread(descriptor, 128, 0).split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class LoopLagMonitor:
    def __init__(self, registry: CollectorRegistry, interval: float = 0.05, schedstat: str = SCHEDSTAT) -> None:
        self.interval = interval
        self.largest = 0.0
        self.largest_own = 0.0
        self.schedstat = schedstat
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
        self.own_lag = Histogram(
            "connector_proxy_event_loop_own_lag_seconds",
            "The event loop's lag less the time its thread waited for a CPU since the task went to sleep: the "
            "pauses the worker's own work or a blocking call caused (not sampled where the kernel does not say).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        frozen = Gauge(
            "connector_proxy_gc_frozen_objects",
            "Objects frozen out of the garbage collector's reach after start-up (0: CONNECTOR_PROXY_GC_FREEZE off).",
            registry=registry,
        )
        frozen.set_function(frozen_objects)

    def record(self, lag: float, waited: float | None = None) -> None:
        """One sample: ``lag`` seconds late, after ``waited`` seconds runnable without a CPU since the
        task went to sleep (None: not known)."""
        lag = max(lag, 0.0)
        self.lag.observe(lag)
        self.largest = max(self.largest, lag)
        if waited is not None:
            own = max(lag - waited, 0.0)
            self.own_lag.observe(own)
            self.largest_own = max(self.largest_own, own)

    async def run(self) -> None:
        reader = cpu_wait_reader(self.schedstat)  # opened on the loop's thread: its statistics
        try:
            waited = cpu_wait(reader) if reader is not None else None
            while True:
                due = time.perf_counter() + self.interval
                await asyncio.sleep(self.interval)
                lag = time.perf_counter() - due
                now = cpu_wait(reader) if reader is not None else None
                self.record(lag, None if now is None or waited is None else now - waited)
                waited = now
        finally:
            if reader is not None:
                with contextlib.suppress(OSError):
                    os.close(reader)
