"""Running SQL: a query, a statement, or several statements in one transaction.

Every statement goes to the server with the extended query protocol, which takes exactly one
statement: ``SELECT 1; DROP TABLE t`` is refused (``SyntaxError``) instead of run, and every value
is bound as a parameter, never written into the SQL. A query runs in a read-only transaction
through a server-side cursor, so at most ``max_rows`` (+1, to tell that there were more) rows ever
leave the server. Each transaction sets ``statement_timeout`` for itself only.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import AsyncConnection, AsyncCursor, IsolationLevel
from psycopg_pool import PoolTimeout

from spiff_connector_postgres import errors
from spiff_connector_postgres.pools import Pool, shared_pools
from spiff_connector_postgres.settings import ConnectionSettings
from spiff_connector_postgres.values import Parameters, bind, to_json
from spiff_connector_sdk import CommandError

RowFormat = Literal["objects", "arrays"]
Isolation = Literal["read committed", "repeatable read", "serializable"]
ISOLATION_LEVELS: dict[str, IsolationLevel] = {
    "read committed": IsolationLevel.READ_COMMITTED,
    "repeatable read": IsolationLevel.REPEATABLE_READ,
    "serializable": IsolationLevel.SERIALIZABLE,
}
DIAGNOSE_TIMEOUT = 5.0
_CURSOR = "spiff_query"
_SET_TIMEOUT = "SELECT set_config('statement_timeout', %s, true)"

Connection = AsyncConnection[tuple[Any, ...]]

# Connections each pool has lent out: when none is and still no connection came, the server is
# unreachable (the pool keeps retrying in the background); otherwise every connection is busy.
_in_use: weakref.WeakKeyDictionary[Pool, int] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Parameters = None


@dataclass(frozen=True)
class Limits:
    """Per call: rows kept per statement, the shape of a row, seconds per statement."""

    max_rows: int
    row_format: RowFormat
    timeout: float


def _columns(connection: Connection, cursor: AsyncCursor[Any]) -> list[dict[str, str]]:
    columns = []
    for column in cursor.description or ():
        info = connection.adapters.types.get(column.type_code)
        columns.append({"name": column.name, "type": info.name if info else str(column.type_code)})
    return columns


def _rows(rows: Sequence[Sequence[Any]], columns: list[dict[str, str]], row_format: RowFormat) -> list[Any]:
    if row_format == "arrays":
        return [[to_json(value) for value in row] for row in rows]
    names = [column["name"] for column in columns]
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise CommandError(
            errors.DUPLICATE_COLUMN,
            f"two columns are named {duplicate!r}: give them different aliases, or use row_format 'arrays'",
        )
    return [dict(zip(names, (to_json(value) for value in row), strict=True)) for row in rows]


async def _result(connection: Connection, cursor: AsyncCursor[Any], limits: Limits) -> dict[str, Any]:
    """The rows (if the statement returns any) and the row count of the statement just run."""
    if cursor.description is None:  # no rows; a row count for INSERT, UPDATE, DELETE, MERGE, COPY
        return {"row_count": cursor.rowcount if cursor.rowcount >= 0 else None}
    fetched = await cursor.fetchmany(limits.max_rows + 1)
    columns = _columns(connection, cursor)
    kept = fetched[: limits.max_rows]
    result: dict[str, Any] = {
        "rows": _rows(kept, columns, limits.row_format),
        "columns": columns,
        "truncated": len(fetched) > limits.max_rows,
    }
    result["row_count"] = cursor.rowcount if cursor.rowcount >= 0 and not result["truncated"] else len(kept)
    return result


async def _diagnose(settings: ConnectionSettings, pool: Pool) -> CommandError:
    """Why no connection came in time: every one busy, or the server cannot be reached."""
    if _in_use.get(pool, 0) > 0:
        return CommandError(
            errors.POOL_TIMEOUT,
            f"all {settings.pool_size} connections of {settings.name!r} stayed busy for "
            f"{settings.pool_timeout:g} s (POSTGRES_{settings.name.upper()}_POOL_SIZE sets their number)",
        )
    try:
        probe = await asyncio.wait_for(psycopg.AsyncConnection.connect(settings.conninfo), DIAGNOSE_TIMEOUT)
    except psycopg.Error as error:
        reason = errors.primary_message(error)
    except TimeoutError:
        reason = f"no answer within {DIAGNOSE_TIMEOUT:g} s"
    else:
        await probe.close()
        reason = f"no connection could be made within {settings.pool_timeout:g} s"
    message = f"cannot connect to {settings.name!r}: {reason}"
    return CommandError(errors.CONNECTION_FAILED, errors.scrubbed(message, settings.secrets))


@asynccontextmanager
async def _connection(settings: ConnectionSettings) -> AsyncIterator[Connection]:
    pool = await shared_pools.get(settings)
    try:
        connection = await pool.getconn()
    except PoolTimeout:
        raise await _diagnose(settings, pool) from None
    _in_use[pool] = _in_use.get(pool, 0) + 1
    try:
        yield connection
    finally:
        _in_use[pool] -= 1
        await pool.putconn(connection)


@asynccontextmanager
async def _transaction(
    settings: ConnectionSettings, limits: Limits, *, read_only: bool, isolation: Isolation | None
) -> AsyncIterator[Connection]:
    """A connection inside a transaction with the call's characteristics and statement timeout."""
    async with _connection(settings) as connection:
        await connection.set_read_only(read_only or settings.read_only)
        await connection.set_isolation_level(ISOLATION_LEVELS[isolation] if isolation else None)
        async with connection.transaction():
            await connection.execute(_SET_TIMEOUT, [str(max(1, round(limits.timeout * 1000)))])
            yield connection


def _failed(error: psycopg.Error, settings: ConnectionSettings, statement: int | None = None) -> CommandError:
    return errors.database_error(error, scrub=settings.secrets, statement=statement)


async def run_query(settings: ConnectionSettings, statement: Statement, limits: Limits) -> dict[str, Any]:
    """Run a row-returning statement (SELECT, VALUES, TABLE, WITH ... SELECT) read-only."""
    try:
        async with (
            _transaction(settings, limits, read_only=True, isolation=None) as connection,
            connection.cursor(name=_CURSOR) as cursor,
        ):
            await cursor.execute(statement.sql, bind(statement.parameters))
            return await _result(connection, cursor, limits)
    except psycopg.Error as error:
        raise _failed(error, settings) from None


async def run_in_transaction(
    settings: ConnectionSettings, statements: Sequence[Statement], limits: Limits, *, isolation: Isolation | None
) -> list[dict[str, Any]]:
    """Run ``statements`` in order in one transaction: all of them are committed, or none."""
    results: list[dict[str, Any]] = []
    running: int | None = None  # the statement that failed, if one did (None: the set-up or the commit)
    try:
        async with _transaction(settings, limits, read_only=False, isolation=isolation) as connection:
            cursor = connection.cursor()
            for statement in statements:
                running = len(results)
                async with connection.pipeline():  # the extended protocol: one statement, never several
                    await cursor.execute(statement.sql, bind(statement.parameters))
                results.append(await _result(connection, cursor, limits))
            running = None
    except psycopg.Error as error:
        raise _failed(error, settings, running if len(statements) > 1 else None) from None
    return results
