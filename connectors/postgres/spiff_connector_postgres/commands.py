"""The three commands: ``pg/Query``, ``pg/Execute`` and ``pg/Transaction``.

Their signatures are the catalog (the proxy derives each parameter's JSON Schema from them). A
diagram names a connection, never a credential: the connection's settings come from the proxy's
``config`` (:mod:`spiff_connector_postgres.settings`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any

from spiff_connector_postgres.errors import invalid_argument
from spiff_connector_postgres.options import Isolation, Limits, RowFormat, Statement
from spiff_connector_postgres.settings import MAX_STATEMENT_TIMEOUT, ConnectionSettings, connection_settings
from spiff_connector_sdk import Context, Param, Result

DEFAULT_MAX_ROWS = 1000
MAX_ROWS = 100_000
MAX_STATEMENTS = 100

ConnectionName = Annotated[
    str,
    Param(
        "Name of a configured connection: its settings are the config keys POSTGRES_<NAME>_* "
        "(e.g. 'orders' reads POSTGRES_ORDERS_DSN).",
        examples=("default",),
        schema={"pattern": "^[A-Za-z][A-Za-z0-9_]{0,62}$"},
    ),
]
Sql = Annotated[
    str,
    Param(
        "One SQL statement. Values go in parameters, referenced as %s (a list) or %(name)s (an object); "
        "with parameters, write a literal % as %%.",
        examples=("SELECT id, total FROM orders WHERE customer_id = %s AND status = ANY(%s)",),
        schema={"minLength": 1},
    ),
]
SqlParameters = Annotated[
    list[Any] | dict[str, Any] | None,
    Param(
        "Values bound to the placeholders (never written into the SQL): a list for %s, an object for %(name)s. "
        "A list of scalars binds as an array; an object binds as jsonb.",
        examples=([42, ["open", "paid"]],),
    ),
]
MaxRows = Annotated[
    int,
    Param(
        f"Rows returned at most (1 to {MAX_ROWS}); 'truncated' tells whether there were more.",
        schema={"minimum": 1, "maximum": MAX_ROWS},
    ),
]
Timeout = Annotated[
    float | None,
    Param(
        "Seconds one statement may run before the server cancels it (QueryCanceled); "
        "default: the connection's POSTGRES_<NAME>_STATEMENT_TIMEOUT (30).",
        schema={"exclusiveMinimum": 0, "maximum": MAX_STATEMENT_TIMEOUT},
    ),
]
Rows = Annotated[
    RowFormat,
    Param("'objects' (a row is {column: value}) or 'arrays' (a row is a list, in the columns' order)."),
]
StatementList = Annotated[
    list[dict[str, Any]],
    Param(
        f"The statements, run in order (1 to {MAX_STATEMENTS}): each {{'sql': ..., 'parameters': ...}}.",
        schema={
            "minItems": 1,
            "maxItems": MAX_STATEMENTS,
            "items": {
                "type": "object",
                "required": ["sql"],
                "additionalProperties": False,
                "properties": {
                    "sql": {"type": "string", "minLength": 1},
                    "parameters": {"type": ["array", "object", "null"]},
                },
            },
        },
    ),
]
IsolationParam = Annotated[
    Isolation | None,
    Param(
        "The transaction's isolation level: 'read committed', 'repeatable read' or 'serializable' (default: "
        "the server's, normally read committed)."
    ),
]


def _limits(settings: ConnectionSettings, max_rows: int, row_format: RowFormat, timeout: float | None) -> Limits:
    if not 1 <= max_rows <= MAX_ROWS:
        raise invalid_argument(f"max_rows must be from 1 to {MAX_ROWS}")
    if timeout is not None and not 0 < timeout <= MAX_STATEMENT_TIMEOUT:
        raise invalid_argument(f"timeout must be more than 0 and at most {MAX_STATEMENT_TIMEOUT:g} seconds")
    return Limits(max_rows=max_rows, row_format=row_format, timeout=timeout or settings.statement_timeout)


def _statement(sql: Any, parameters: Any, where: str) -> Statement:
    if not isinstance(sql, str) or not sql.strip():
        raise invalid_argument(f"{where}sql must be a non-empty string")
    if parameters is not None and (isinstance(parameters, str) or not isinstance(parameters, Sequence | Mapping)):
        raise invalid_argument(f"{where}parameters must be a list, an object or null")
    return Statement(sql=sql, parameters=parameters)


def _statements(items: list[dict[str, Any]]) -> list[Statement]:
    if not 1 <= len(items) <= MAX_STATEMENTS:
        raise invalid_argument(f"statements must hold 1 to {MAX_STATEMENTS} statements")
    found = []
    for index, item in enumerate(items):
        where = f"statements[{index}]."
        extra = sorted(set(item) - {"sql", "parameters"})
        if extra:
            raise invalid_argument(f"{where}{extra[0]} is not a statement field (sql, parameters)")
        found.append(_statement(item.get("sql"), item.get("parameters"), where))
    return found


async def query(
    ctx: Context,
    *,
    sql: Sql,
    connection: ConnectionName = "default",
    parameters: SqlParameters = None,
    max_rows: MaxRows = DEFAULT_MAX_ROWS,
    row_format: Rows = "objects",
    timeout: Timeout = None,  # noqa: ASYNC109 - the statement's own timeout, enforced by the server
) -> Result:
    """Run a query (SELECT, VALUES, TABLE, WITH ... SELECT) in a read-only transaction and return its rows."""
    settings = connection_settings(ctx.config, connection)
    limits = _limits(settings, max_rows, row_format, timeout)
    from spiff_connector_postgres.statements import run_query  # the driver loads at the first call

    result = await run_query(settings, _statement(sql, parameters, ""), limits)
    ctx.log(f"pg/Query on {settings.name!r}: {len(result['rows'])} rows{' (truncated)' if result['truncated'] else ''}")
    return Result(body=result)


async def execute(
    ctx: Context,
    *,
    sql: Sql,
    connection: ConnectionName = "default",
    parameters: SqlParameters = None,
    max_rows: MaxRows = DEFAULT_MAX_ROWS,
    row_format: Rows = "objects",
    timeout: Timeout = None,  # noqa: ASYNC109 - the statement's own timeout, enforced by the server
) -> Result:
    """Run one statement (INSERT, UPDATE, DELETE, DDL, ...) and commit it; return its row count and RETURNING rows."""
    settings = connection_settings(ctx.config, connection)
    limits = _limits(settings, max_rows, row_format, timeout)
    from spiff_connector_postgres.statements import run_in_transaction

    [result] = await run_in_transaction(settings, [_statement(sql, parameters, "")], limits, isolation=None)
    ctx.log(f"pg/Execute on {settings.name!r}: {result['row_count']} rows affected")
    return Result(body=result)


async def transaction(
    ctx: Context,
    *,
    statements: StatementList,
    connection: ConnectionName = "default",
    isolation: IsolationParam = None,
    max_rows: MaxRows = DEFAULT_MAX_ROWS,
    row_format: Rows = "objects",
    timeout: Timeout = None,  # noqa: ASYNC109 - each statement's own timeout, enforced by the server
) -> Result:
    """Run several statements in order in one transaction: all are committed, or (when one fails) none."""
    settings = connection_settings(ctx.config, connection)
    limits = _limits(settings, max_rows, row_format, timeout)
    from spiff_connector_postgres.statements import run_in_transaction

    results = await run_in_transaction(settings, _statements(statements), limits, isolation=isolation)
    ctx.log(f"pg/Transaction on {settings.name!r}: {len(results)} statements committed")
    return Result(body={"results": results})


COMMANDS: dict[str, Callable[..., Awaitable[Result]]] = {"Query": query, "Execute": execute, "Transaction": transaction}
