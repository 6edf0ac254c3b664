"""PerKey: holders of one key take turns, other keys do not wait, nothing is kept once done."""

from __future__ import annotations

import asyncio

import pytest

from connector_operator.serial import PerKey


async def test_holders_of_one_key_take_turns_and_say_they_waited() -> None:
    turns = PerKey()
    inside: list[str] = []
    seen: list[tuple[str, bool]] = []

    async def hold(key: str, label: str) -> None:
        async with turns.hold(key) as waited:
            seen.append((label, waited))
            inside.append(label)
            assert [x for x in inside if x.startswith(key)] == [label]  # alone with its key
            await asyncio.sleep(0.01)
            inside.remove(label)

    await asyncio.wait_for(asyncio.gather(hold("a", "a1"), hold("a", "a2"), hold("b", "b1")), 5)
    assert seen == [("a1", False), ("b1", False), ("a2", True)]
    assert len(turns) == 0


async def test_a_failing_or_cancelled_holder_releases_its_key() -> None:
    turns = PerKey()
    with pytest.raises(RuntimeError):
        async with turns.hold("a"):
            raise RuntimeError("reconcile failed")
    assert len(turns) == 0

    async def hold_long() -> None:
        async with turns.hold("a"):
            await asyncio.sleep(60)

    holder = asyncio.create_task(hold_long())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold_long())
    await asyncio.sleep(0)
    assert len(turns) == 1
    waiter.cancel()
    holder.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert len(turns) == 0
    async with turns.hold("a") as waited:
        assert waited is False
