"""The event loop's lag is measured, and start-up's objects are frozen out of full collections."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from connector_proxy.app import create_app
from connector_proxy.event_loop import LoopLagMonitor, freeze_startup_objects
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
