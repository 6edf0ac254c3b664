"""One reconcile of a Connector at a time.

Several triggers reconcile the same Connector (kopf's create/update/resume handler, a referenced
Secret's or ConfigMap's event, its Deployment's availability, the periodic re-discovery, a proxy's
recheck) and kopf serializes only its own handlers per object. Two reconciles at once both read
"no Deployment yet" and both post ``WorkloadCreated``; the later one can also write a status from
the older body over the newer one. :class:`PerKey` makes them take turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PerKey:
    """An asyncio lock per key, dropped once nobody holds it or waits for it (no growth with churn)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[bool]:
        """Hold ``key``'s lock for the block; yields True when another holder had to finish first."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        waited = lock.locked()
        try:
            async with lock:
                yield waited
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
