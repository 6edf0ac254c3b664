"""The event loop's lag is measured, and start-up's objects are frozen out of full collections."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from connector_proxy.app import create_app
from connector_proxy.event_loop import LoopLagMonitor, cpu_wait, cpu_wait_reader, freeze_startup_objects
from connector_proxy.settings import Settings
from proxytest.servers import serve_in_thread


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_a_blocked_loop_shows_as_lag() -> None:
    registry = CollectorRegistry()
    monitor = LoopLagMonitor(registry, interval=0.01)
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251 - the point: the loop is blocked, the monitor wakes 0.2 s late
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert 0.15 < monitor.largest < 1.0
    assert registry.get_sample_value("connector_proxy_event_loop_lag_max_seconds") == monitor.largest
    assert registry.get_sample_value("connector_proxy_event_loop_lag_seconds_bucket", {"le": "0.1"}) >= 1
    assert registry.get_sample_value("connector_proxy_event_loop_lag_seconds_bucket", {"le": "0.1"}) < (
        registry.get_sample_value("connector_proxy_event_loop_lag_seconds_count") or 0
    )
    # A blocking call is the loop's own pause: its thread did not wait for a CPU meanwhile.
    assert 0.15 < monitor.largest_own <= monitor.largest
    assert registry.get_sample_value("connector_proxy_event_loop_own_lag_seconds_bucket", {"le": "0.1"}) < (
        registry.get_sample_value("connector_proxy_event_loop_own_lag_seconds_count") or 0
    )


def test_the_wait_for_a_cpu_is_not_the_loops_own_lag() -> None:
    registry = CollectorRegistry()
    monitor = LoopLagMonitor(registry)
    monitor.record(0.05, waited=0.045)
    monitor.record(0.002, waited=0.004)  # waited before the task was due: none of its lag is the machine's
    assert monitor.largest == 0.05
    assert monitor.largest_own == pytest.approx(0.005)
    assert registry.get_sample_value("connector_proxy_event_loop_own_lag_seconds_sum") == pytest.approx(0.005)
    assert registry.get_sample_value("connector_proxy_event_loop_own_lag_seconds_count") == 2


async def test_without_scheduler_statistics_only_the_lag_is_sampled(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    monitor = LoopLagMonitor(registry, interval=0.005, schedstat=str(tmp_path / "absent"))
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert (registry.get_sample_value("connector_proxy_event_loop_lag_seconds_count") or 0) >= 2
    assert registry.get_sample_value("connector_proxy_event_loop_own_lag_seconds_count") == 0


def test_a_threads_cpu_wait_is_read_from_its_scheduler_statistics() -> None:
    reader = cpu_wait_reader()
    assert reader is not None, "Linux exposes /proc/thread-self/schedstat"
    first = cpu_wait(reader)
    assert first is not None and first >= 0
    time.sleep(0.01)
    second = cpu_wait(reader)
    assert second is not None and second >= first


# The monitor, pinned to one CPU at the lowest priority, while a busy process holds that CPU: its thread
# waits for the CPU for most of its lag, and none of that wait is the loop's own.
CONTENDED = textwrap.dedent(
    r"""
    import asyncio, json, os, subprocess, sys
    from prometheus_client import CollectorRegistry
    from connector_proxy.event_loop import LoopLagMonitor

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    busy = (
        "import os, time\n"
        f"os.sched_setaffinity(0, {{{cpu}}})\n"
        "end = time.monotonic() + 1.5\n"
        "while time.monotonic() < end: pass"
    )

    async def main():
        registry = CollectorRegistry()
        monitor = LoopLagMonitor(registry, interval=0.01)
        spinner = subprocess.Popen([sys.executable, "-c", busy])  # started before this process yields its CPU
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        task = asyncio.create_task(monitor.run())
        await asyncio.sleep(1.0)
        task.cancel()
        spinner.wait(timeout=10)
        names = ("lag", "own_lag")
        print(json.dumps({n: registry.get_sample_value(f"connector_proxy_event_loop_{n}_seconds_sum") for n in names}))

    asyncio.run(main())
    """
)


def test_a_loop_left_without_a_cpu_shows_lag_but_no_own_lag() -> None:
    done = subprocess.run([sys.executable, "-c", CONTENDED], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    sums = json.loads(done.stdout)
    assert sums["lag"] > 0.02  # about 100 samples, each a few ms late: the busy process held the CPU
    assert sums["own_lag"] < 0.5 * sums["lag"]


def test_freezing_moves_the_live_objects_out_of_the_collectors_reach(unfrozen: None) -> None:
    assert gc.get_freeze_count() == 0
    kept = [object() for _ in range(1000)]
    freeze_startup_objects()
    assert gc.get_freeze_count() > len(kept)
    assert sum(gc.get_count()) < 100  # nothing left for the next collection but what came after


def test_an_app_shows_its_loop_lag_and_frozen_objects() -> None:
    with serve_in_thread(create_app(Settings())) as url:
        metrics = httpx.get(f"{url}/metrics").text
    assert "connector_proxy_event_loop_lag_max_seconds" in metrics
    assert "connector_proxy_event_loop_lag_seconds_bucket" in metrics
    assert "connector_proxy_gc_frozen_objects" in metrics


def test_a_scrape_reads_the_frozen_count_kept_at_the_freeze(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """gc.get_freeze_count() walks every frozen object: in a serve worker each scrape paused the loop 11 ms."""
    count = gc.get_freeze_count
    walks: list[int] = []  # what each walk counted

    def counted() -> int:
        walks.append(count())
        return walks[-1]

    monkeypatch.setattr(gc, "get_freeze_count", counted)
    registry = CollectorRegistry()
    LoopLagMonitor(registry)
    freeze_startup_objects()
    [at_freeze] = walks  # frozen objects can be freed later: the gauge says what the freeze froze
    assert registry.get_sample_value("connector_proxy_gc_frozen_objects") == at_freeze > 0
    assert walks == [at_freeze]  # the scrape walked nothing
