"""Running SQL: a query, a statement, or several statements in one transaction.

A call is one pipeline, sent in one round trip: ``BEGIN`` (with the call's isolation level and
read-only mode), ``SET LOCAL statement_timeout``, the statements, ``COMMIT``. When a statement fails
the server skips the rest, and the transaction is rolled back.

Every statement goes with the extended query protocol, which takes exactly one statement:
``SELECT 1; DROP TABLE t`` is refused (``SyntaxError``) instead of run, and every value is bound as a
parameter, never written into the SQL. A query runs read-only through a cursor
(``DECLARE ... CURSOR FOR <sql>``, then ``FETCH FORWARD max_rows + 1``), so at most that many rows
ever leave the server.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import AsyncCursor, sql
from psycopg_pool import PoolTimeout

from spiff_connector_postgres import errors
from spiff_connector_postgres.options import Isolation, Limits, RowFormat, Statement
from spiff_connector_postgres.pools import mark_returned, shared_pools
from spiff_connector_postgres.settings import ConnectionSettings
from spiff_connector_postgres.values import Parameters, bind, to_json
from spiff_connector_sdk import CommandError

if TYPE_CHECKING:
    from spiff_connector_postgres.pools import Connection, Pool

DIAGNOSE_TIMEOUT = 5.0
_CURSOR = "spiff_query"
_SET_TIMEOUT = "SELECT set_config('statement_timeout', %s, true)"
_DECLARE = sql.SQL(f"DECLARE {_CURSOR} NO SCROLL CURSOR FOR ")
_COMMIT = "COMMIT"

Query = str | sql.SQL | sql.Composed

# Connections each pool has lent out: when none is and still no connection came, the server is
# unreachable (the pool keeps retrying in the background); otherwise every connection is busy.
_in_use: weakref.WeakKeyDictionary[Pool, int] = weakref.WeakKeyDictionary()


def _begin(*, read_only: bool, isolation: Isolation | None) -> str:
    """``BEGIN`` with the transaction's characteristics (fixed words: nothing of the caller's goes in)."""
    words = ["BEGIN"]
    if isolation is not None:
        words.append(f"ISOLATION LEVEL {isolation.upper()}")
    words.append("READ ONLY" if read_only else "READ WRITE")
    return " ".join(words)


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
    """The rows (if the statement returned any) and the row count of one statement of the pipeline."""
    if cursor.description is None:  # no rows; a row count for INSERT, UPDATE, DELETE, MERGE, COPY
        return {"row_count": cursor.rowcount if cursor.rowcount >= 0 else None}
    fetched = await cursor.fetchmany(limits.max_rows + 1)
    columns = _columns(connection, cursor)
    kept = fetched[: limits.max_rows]
    truncated = len(fetched) > limits.max_rows
    return {
        "rows": _rows(kept, columns, limits.row_format),
        "columns": columns,
        "truncated": truncated,
        "row_count": cursor.rowcount if cursor.rowcount >= 0 and not truncated else len(kept),
    }


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
        mark_returned(connection)
        await pool.putconn(connection)  # the pool discards it if it broke or is still in a transaction


async def _rollback(connection: Connection) -> None:
    if not connection.broken:
        await connection.execute("ROLLBACK")


async def _pipeline(
    connection: Connection, cursors: Sequence[AsyncCursor[Any]], work: Sequence[tuple[Query, Parameters]]
) -> None:
    """Send ``work`` in one round trip, each item on its cursor. When one fails the server skips the rest:
    the failed item is the first cursor without a result."""
    async with connection.pipeline():
        for cursor, (query, parameters) in zip(cursors, work, strict=True):
            await cursor.execute(query, bind(parameters))


async def _run(
    settings: ConnectionSettings,
    limits: Limits,
    statements: Sequence[tuple[Query, Parameters]],
    *,
    read_only: bool,
    isolation: Isolation | None,
    numbered: bool = False,
) -> list[dict[str, Any]]:
    """One transaction; the result of each of ``statements``, in order (``numbered``: an error names the
    statement that failed).

    Read-only, it is one round trip, ``COMMIT`` included. Otherwise the results are read before a
    second round trip commits, so a result that cannot be returned (``DuplicateColumnName``) rolls the
    transaction back instead of reporting an error for committed work.
    """
    setup: list[tuple[Query, Parameters]] = [
        (_begin(read_only=read_only or settings.read_only, isolation=isolation), None),
        (_SET_TIMEOUT, [str(max(1, round(limits.timeout * 1000)))]),
    ]
    work = [*setup, *statements, *([(_COMMIT, None)] if read_only else [])]
    async with _connection(settings) as connection:
        cursors = [connection.cursor() for _ in work]
        try:
            await _pipeline(connection, cursors, work)
            results = [await _result(connection, cursor, limits) for cursor in cursors[len(setup) :][: len(statements)]]
            if not read_only:
                await connection.execute(_COMMIT)
        except psycopg.Error as error:
            await _rollback(connection)
            # The first cursor without a result; none (a failed COMMIT) is past the statements.
            failed = next((i for i, cursor in enumerate(cursors) if cursor.pgresult is None), len(cursors))
            statement = failed - len(setup)
            named = statement if numbered and 0 <= statement < len(statements) else None
            raise errors.database_error(error, scrub=settings.secrets, statement=named) from None
        except CommandError:
            await _rollback(connection)
            raise
    return results


async def run_query(settings: ConnectionSettings, statement: Statement, limits: Limits) -> dict[str, Any]:
    """Run a row-returning statement (SELECT, VALUES, TABLE, WITH ... SELECT) read-only."""
    declare = _DECLARE + sql.SQL(statement.sql)  # the caller's SQL, as given
    fetch = f"FETCH FORWARD {limits.max_rows + 1} FROM {_CURSOR}"
    _, fetched = await _run(
        settings, limits, [(declare, statement.parameters), (fetch, None)], read_only=True, isolation=None
    )
    return fetched


async def run_in_transaction(
    settings: ConnectionSettings, statements: Sequence[Statement], limits: Limits, *, isolation: Isolation | None
) -> list[dict[str, Any]]:
    """Run ``statements`` in order in one transaction: all of them are committed, or none."""
    work: list[tuple[Query, Parameters]] = [(s.sql, s.parameters) for s in statements]
    return await _run(settings, limits, work, read_only=False, isolation=isolation, numbered=len(statements) > 1)
