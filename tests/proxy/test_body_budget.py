"""The body budget: room taken and given back, waiting, refusing, a request alone always fits."""

from __future__ import annotations

import asyncio

import pytest

from connector_proxy.body_budget import BodyBudget
from connector_proxy.errors import DispatchError


async def test_room_is_taken_and_given_back() -> None:
    budget = BodyBudget(100, wait=0.1)
    hold = budget.hold()
    await hold.take(60)
    await hold.take(30)
    assert budget.used == 90
    await hold.release()
    assert budget.used == 0
    await hold.release()  # twice is harmless
    assert budget.used == 0


async def test_a_request_alone_fits_whatever_its_size() -> None:
    budget = BodyBudget(100, wait=0.01)
    hold = budget.hold()
    await hold.take(1_000)
    assert budget.used == 1_000


async def test_a_request_without_room_waits_for_it() -> None:
    budget = BodyBudget(100, wait=5)
    first, second = budget.hold(), budget.hold()
    await first.take(80)
    waiting = asyncio.create_task(second.take(50))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await first.release()
    await asyncio.wait_for(waiting, 5)
    assert budget.used == 50


async def test_a_request_without_room_within_the_wait_is_refused_with_503_proxy_busy() -> None:
    budget = BodyBudget(100, wait=0.05)
    first, second = budget.hold(), budget.hold()
    await first.take(80)
    with pytest.raises(DispatchError) as raised:
        await second.take(50)
    assert (raised.value.status, raised.value.code) == (503, "proxy_busy")
    assert budget.used == 80 and second.size == 0
