"""A bound on the request bodies a worker holds at once.

spiff-arena sends a task's whole data with every ``/v1/do`` call, so one body can be tens of
megabytes; many of them at once would take a worker's memory without bound. Every ``/v1/do``
request holds a share of the budget for as long as it is read and run: its ``Content-Length`` up
front (a chunked body: chunk by chunk). A request that does not fit waits for others to finish,
up to :attr:`BodyBudget.wait`, and is then refused with ``503 proxy_busy`` (spiff-arena retries a
503) before its body is read. A request alone is always admitted, whatever its size (up to
``CONNECTOR_PROXY_MAX_REQUEST_BYTES``), so the budget never refuses what the size limit allows.
"""

from __future__ import annotations

import asyncio

from connector_proxy.errors import DispatchError, ErrorCode


def busy(limit: int, wait: float) -> DispatchError:
    return DispatchError(
        503,
        ErrorCode.PROXY_BUSY,
        f"Request bodies of {limit} bytes are being handled (CONNECTOR_PROXY_MAX_BODY_MEMORY_BYTES); "
        f"no room for this one within {wait:g} s. Nothing was run; try again.",
    )


class BodyBudget:
    """Shared by the requests of one event loop (one worker)."""

    def __init__(self, limit: int, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        self.used = 0
        self._waiting = 0
        self._freed: asyncio.Condition | None = None

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    async def take(self, size: int) -> None:
        """Hold ``size`` more bytes; :func:`busy` when they do not fit within :attr:`wait`."""
        if self._fits(size):  # the common case: no lock, no await
            self.used += size
            return
        if self._freed is None:
            self._freed = asyncio.Condition()
        self._waiting += 1
        try:
            async with self._freed:
                async with asyncio.timeout(self.wait):
                    await self._freed.wait_for(lambda: self._fits(size))
                self.used += size
        except TimeoutError:
            raise busy(self.limit, self.wait) from None
        finally:
            self._waiting -= 1

    async def give(self, size: int) -> None:
        self.used = max(0, self.used - size)
        if self._waiting and self._freed is not None:
            async with self._freed:
                self._freed.notify_all()

    def hold(self) -> Hold:
        return Hold(self)


class Hold:
    """What one request holds of the budget; :meth:`release` gives all of it back."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.size = 0

    async def take(self, size: int) -> None:
        await self.budget.take(size)
        self.size += size

    async def release(self) -> None:
        size, self.size = self.size, 0
        if size:
            await self.budget.give(size)
