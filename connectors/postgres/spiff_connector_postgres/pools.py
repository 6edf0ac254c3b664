"""One connection pool per named connection, shared by every call.

The proxy enters :func:`lifespan` once on its event loop; pools are opened there on first use
(no connection is made before a call needs one) and closed when it exits. A command run without the
lifespan (called directly in a test) gets pools per running event loop; :func:`close_loop_pools`
closes them. When a connection's settings change (the config was reloaded), its next call opens a
new pool and the old one is closed once its calls are done.

A connection that sat idle for more than :data:`CHECK_IDLE_AFTER` seconds is checked with a round
trip before a call gets it, so one the server closed meanwhile (a restart, a failover) is replaced
instead of failing the call; one returned moments ago is lent without that round trip. Connections
are in autocommit mode: each call sends its own ``BEGIN`` ... ``COMMIT``, pipelined with its
statements (:mod:`spiff_connector_postgres.statements`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

from spiff_connector_postgres.settings import ConnectionSettings

if TYPE_CHECKING:  # the driver is imported when the first pool is made, not with the connector
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    Connection: TypeAlias = psycopg.AsyncConnection[tuple[Any, ...]]
    Pool: TypeAlias = AsyncConnectionPool[Connection]

APPLICATION_NAME = "spiff-connector-postgres"
MAX_IDLE = 300.0  # seconds a spare connection stays open
CHECK_IDLE_AFTER = 2.0  # seconds idle after which a connection is checked before it is lent
CLOSE_TIMEOUT = 10.0

_returned_at: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()


async def _check(connection: Connection) -> None:
    """The pool's check: a round trip, unless the connection came back moments ago."""
    if time.monotonic() - _returned_at.get(connection, 0.0) > CHECK_IDLE_AFTER:
        from psycopg_pool import AsyncConnectionPool

        await AsyncConnectionPool.check_connection(connection)


def mark_returned(connection: Connection) -> None:
    """Note that ``connection`` was in use until now (it needs no check for a moment)."""
    _returned_at[connection] = time.monotonic()


def _conninfo(settings: ConnectionSettings) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if "application_name" in conninfo_to_dict(settings.conninfo):
        return settings.conninfo
    return make_conninfo(settings.conninfo, application_name=APPLICATION_NAME)


def new_pool(settings: ConnectionSettings) -> Pool:
    """A closed pool for ``settings`` (open it on the event loop that will use it)."""
    from psycopg_pool import AsyncConnectionPool

    return AsyncConnectionPool(
        _conninfo(settings),
        min_size=0,
        max_size=settings.pool_size,
        timeout=settings.pool_timeout,
        max_idle=MAX_IDLE,
        check=_check,
        # No server-side prepared statements: a statement the server skipped in a failed pipeline would be
        # taken for prepared, and poolers in transaction mode (PgBouncer) do not keep them.
        kwargs={"autocommit": True, "prepare_threshold": None},
        name=f"pg-{settings.name}",
        open=False,
    )


class _LoopPools:
    """The pools of one event loop, by connection name."""

    def __init__(self) -> None:
        self.pools: dict[str, tuple[ConnectionSettings, Pool]] = {}
        self.closing: set[asyncio.Task[None]] = set()

    async def get(self, settings: ConnectionSettings) -> Pool:
        current = self.pools.get(settings.name)
        if current is not None and current[0] == settings:
            return current[1]
        pool = new_pool(settings)
        await pool.open(wait=False)
        self.pools[settings.name] = (settings, pool)
        if current is not None:
            task = asyncio.get_running_loop().create_task(current[1].close(timeout=CLOSE_TIMEOUT))
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)
        return pool

    async def close(self) -> None:
        pools = [pool for _, pool in self.pools.values()]
        self.pools.clear()
        await asyncio.gather(*(pool.close(timeout=CLOSE_TIMEOUT) for pool in pools), *self.closing)


class Pools:
    """The lifespan's pools plus lazily created per-event-loop ones."""

    def __init__(self) -> None:
        self._main: tuple[asyncio.AbstractEventLoop, _LoopPools] | None = None
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools] = weakref.WeakKeyDictionary()

    def _for_loop(self) -> _LoopPools:
        loop = asyncio.get_running_loop()
        if self._main is not None and self._main[0] is loop:
            return self._main[1]
        pools = self._per_loop.get(loop)
        if pools is None:
            pools = self._per_loop[loop] = _LoopPools()
        return pools

    async def get(self, settings: ConnectionSettings) -> Pool:
        """The open pool for ``settings`` on the running event loop."""
        return await self._for_loop().get(settings)

    async def close_loop_pools(self) -> None:
        """Close the pools lazily created for the running event loop, if any."""
        pools = self._per_loop.pop(asyncio.get_running_loop(), None)
        if pools is not None:
            await pools.close()

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Own the pools of the running loop; close them on exit."""
        previous = self._main
        pools = _LoopPools()
        self._main = (asyncio.get_running_loop(), pools)
        try:
            yield
        finally:
            self._main = previous
            await pools.close()
            await self.close_loop_pools()


shared_pools = Pools()
lifespan = shared_pools.lifespan
close_loop_pools = shared_pools.close_loop_pools
