"""pg/Query, pg/Execute and pg/Transaction against a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from postgres_server import PostgresServer
from spiff_connector_postgres.commands import execute, query, transaction
from spiff_connector_sdk import CommandError, Context


async def _error(call: Any) -> CommandError:
    with pytest.raises(CommandError) as caught:
        await call
    return caught.value


async def test_types_round_trip_as_json(ctx: Context) -> None:
    sql = """
        SELECT 12345678901234567890.000000000000000001::numeric AS exact, 9223372036854775807::int8 AS big,
               1.5::float8 AS float, 'NaN'::float8 AS nan, '-Infinity'::float8 AS minus_infinity,
               true AS flag, NULL::text AS nothing, 'héllo'::text AS text,
               DATE '2026-12-01' AS day, TIMESTAMP '2026-12-01 10:11:12.5' AS at,
               TIMESTAMPTZ '2026-12-01 10:11:12+02' AS at_tz, TIME '23:59:01' AS clock,
               INTERVAL '1 day 2 hours 0.5 seconds' AS duration,
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, '\\x00ff10'::bytea AS raw,
               ARRAY[1, 2, NULL]::int[] AS numbers, ARRAY[['a', 'b'], ['c', 'd']] AS grid,
               ARRAY[1.10]::numeric[] AS decimals,
               '{"n": 18446744073709551616, "list": [1, "x", null]}'::jsonb AS document, '[1, 2]'::json AS plain,
               '10.0.0.1/8'::inet AS address, int4range(1, 5) AS span, 'empty'::int4range AS none,
               '$1.50'::money AS price
    """
    body = (await query(ctx, sql=sql)).body
    assert body["truncated"] is False
    assert body["row_count"] == 1
    assert body["rows"] == [
        {
            "exact": "12345678901234567890.000000000000000001",
            "big": 9223372036854775807,
            "float": 1.5,
            "nan": "NaN",
            "minus_infinity": "-Infinity",
            "flag": True,
            "nothing": None,
            "text": "héllo",
            "day": "2026-12-01",
            "at": "2026-12-01T10:11:12.500000",
            "at_tz": "2026-12-01T08:11:12+00:00",
            "clock": "23:59:01",
            "duration": 93600.5,
            "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "raw": base64.b64encode(b"\x00\xff\x10").decode(),
            "numbers": [1, 2, None],
            "grid": [["a", "b"], ["c", "d"]],
            "decimals": ["1.10"],
            "document": {"n": 18446744073709551616, "list": [1, "x", None]},
            "plain": [1, 2],
            "address": "10.0.0.1/8",
            "span": {"lower": 1, "upper": 5, "bounds": "[)"},
            "none": {"empty": True},
            "price": "$1.50",
        }
    ]
    types = {column["name"]: column["type"] for column in body["columns"]}
    assert types["exact"] == "numeric" and types["id"] == "uuid" and types["document"] == "jsonb"


async def test_parameters_are_bound_positionally_and_by_name(ctx: Context) -> None:
    await execute(ctx, sql="CREATE TABLE items (id int PRIMARY KEY, tag text, meta jsonb)")
    inserted = await execute(
        ctx,
        sql="INSERT INTO items VALUES (%s, %s, %s), (%s, %s, %s)",
        parameters=[1, "red", {"size": 3}, 2, "blue", None],
    )
    assert inserted.body == {"row_count": 2}
    by_name = await query(
        ctx,
        sql="SELECT id FROM items WHERE tag = %(tag)s OR id = %(id)s ORDER BY id",
        parameters={"tag": "blue", "id": 1},
    )
    assert by_name.body["rows"] == [{"id": 1}, {"id": 2}]
    any_of = await query(ctx, sql="SELECT tag FROM items WHERE id = ANY(%s)", parameters=[[2, 3]])
    assert any_of.body["rows"] == [{"tag": "blue"}]
    as_json = await query(ctx, sql="SELECT meta->>'size' AS size FROM items WHERE meta @> %s", parameters=[{"size": 3}])
    assert as_json.body["rows"] == [{"size": "3"}]
    nested = await query(ctx, sql="SELECT %s::jsonb AS v", parameters=[[{"a": 1}, [2]]])
    assert nested.body["rows"] == [{"v": [{"a": 1}, [2]]}]


async def test_injection_attempts_stay_data(ctx: Context, postgres: PostgresServer, database: str) -> None:
    await execute(ctx, sql="CREATE TABLE users (name text)")
    attacks = ["'; DROP TABLE users; --", "x' OR '1'='1", "%s", "%(name)s", "\\'; DELETE FROM users; --", "$1"]
    for attack in attacks:
        await execute(ctx, sql="INSERT INTO users VALUES (%s)", parameters=[attack])
    found = await query(ctx, sql="SELECT name FROM users WHERE name = %s", parameters=["x' OR '1'='1"])
    assert found.body["rows"] == [{"name": "x' OR '1'='1"}]
    stored = postgres.execute("SELECT name FROM users ORDER BY name", dbname=database)
    assert sorted(row[0] for row in stored) == sorted(attacks)


@pytest.mark.parametrize("command", [query, execute])
async def test_two_statements_in_one_call_are_refused(
    ctx: Context, command: Any, postgres: PostgresServer, database: str
) -> None:
    postgres.execute("CREATE TABLE kept (id int)", dbname=database)
    error = await _error(command(ctx, sql="SELECT 1; DROP TABLE kept"))
    assert error.code == "SyntaxError"
    assert "multiple commands" in error.message
    assert postgres.execute("SELECT count(*) FROM kept", dbname=database) == [(0,)]


async def test_a_literal_percent_needs_no_escape_without_parameters(ctx: Context) -> None:
    body = (await query(ctx, sql="SELECT 'a%' LIKE 'a%' AS matched, '{1,2}'::int[] AS braces")).body
    assert body["rows"] == [{"matched": True, "braces": [1, 2]}]
    escaped = (await query(ctx, sql="SELECT %s || '%%' AS pct", parameters=["50"])).body
    assert escaped["rows"] == [{"pct": "50%"}]


async def test_max_rows_truncates_and_says_so(ctx: Context) -> None:
    body = (await query(ctx, sql="SELECT n FROM generate_series(1, 100000) AS n", max_rows=3)).body
    assert body["rows"] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert body["truncated"] is True
    assert body["row_count"] == 3
    exact = (await query(ctx, sql="SELECT n FROM generate_series(1, 3) AS n", max_rows=3)).body
    assert exact["truncated"] is False and exact["row_count"] == 3


async def test_rows_as_arrays_and_duplicate_names(ctx: Context) -> None:
    arrays = await query(ctx, sql="SELECT 1 AS a, 2 AS a", row_format="arrays")
    assert arrays.body["rows"] == [[1, 2]]
    assert [column["name"] for column in arrays.body["columns"]] == ["a", "a"]
    error = await _error(query(ctx, sql="SELECT 1 AS a, 2 AS a"))
    assert error.code == "DuplicateColumnName"


async def test_query_is_read_only(ctx: Context) -> None:
    await execute(ctx, sql="CREATE SEQUENCE counter")
    error = await _error(query(ctx, sql="SELECT nextval('counter')"))
    assert error.code == "ReadOnlySqlTransaction"
    assert error.body["sqlstate"] == "25006"
    not_a_query = await _error(query(ctx, sql="CREATE TABLE sneaky (id int)"))
    assert not_a_query.code == "SyntaxError"


async def test_a_read_only_connection_refuses_writes(config: dict[str, Any]) -> None:
    ctx = Context(
        config={**config, "POSTGRES_REPORTS_DSN": config["POSTGRES_DEFAULT_DSN"], "POSTGRES_REPORTS_READ_ONLY": "true"}
    )
    await execute(ctx, sql="CREATE TABLE facts (n int)")
    error = await _error(execute(ctx, connection="reports", sql="INSERT INTO facts VALUES (1)"))
    assert error.code == "ReadOnlySqlTransaction"
    assert (await query(ctx, connection="reports", sql="SELECT count(*) AS n FROM facts")).body["rows"] == [{"n": 0}]


async def test_execute_returns_row_count_and_returning_rows(ctx: Context) -> None:
    created = await execute(ctx, sql="CREATE TABLE orders (id serial PRIMARY KEY, status text)")
    assert created.body == {"row_count": None}
    await execute(ctx, sql="INSERT INTO orders (status) SELECT 'open' FROM generate_series(1, 5)")
    updated = await execute(
        ctx, sql="UPDATE orders SET status = %s WHERE id <= %s RETURNING id", parameters=["paid", 2]
    )
    assert updated.body["row_count"] == 2
    assert updated.body["rows"] == [{"id": 1}, {"id": 2}]
    deleted = await execute(ctx, sql="DELETE FROM orders WHERE status = 'open'")
    assert deleted.body == {"row_count": 3}
    assert "3 rows affected" in ctx.logs[-1]


async def test_transaction_commits_all_or_nothing(ctx: Context) -> None:
    await execute(ctx, sql="CREATE TABLE accounts (id int PRIMARY KEY, balance int CHECK (balance >= 0))")
    await execute(ctx, sql="INSERT INTO accounts VALUES (1, 100), (2, 0)")
    moved = await transaction(
        ctx,
        statements=[
            {"sql": "UPDATE accounts SET balance = balance - %s WHERE id = 1", "parameters": [30]},
            {"sql": "UPDATE accounts SET balance = balance + %s WHERE id = 2 RETURNING balance", "parameters": [30]},
        ],
    )
    assert moved.body == {
        "results": [
            {"row_count": 1},
            {
                "rows": [{"balance": 30}],
                "columns": [{"name": "balance", "type": "int4"}],
                "truncated": False,
                "row_count": 1,
            },
        ]
    }
    error = await _error(
        transaction(
            ctx,
            statements=[
                {"sql": "UPDATE accounts SET balance = balance + 500 WHERE id = 2"},
                {"sql": "UPDATE accounts SET balance = balance - 500 WHERE id = 1"},
            ],
        )
    )
    assert error.code == "CheckViolation"
    assert error.message.startswith("statement 2 failed: ")
    assert error.body["statement"] == 1
    assert error.body["constraint"] == "accounts_balance_check"
    assert error.body["table"] == "accounts"
    balances = await query(ctx, sql="SELECT id, balance FROM accounts ORDER BY id", row_format="arrays")
    assert balances.body["rows"] == [[1, 70], [2, 30]]


async def test_transaction_isolation_level(ctx: Context) -> None:
    sql = "SELECT current_setting('transaction_isolation') AS level, current_setting('transaction_read_only') AS ro"
    result = await transaction(ctx, statements=[{"sql": sql}], isolation="serializable")
    assert result.body["results"][0]["rows"] == [{"level": "serializable", "ro": "off"}]
    default = await transaction(ctx, statements=[{"sql": sql}])
    assert default.body["results"][0]["rows"] == [{"level": "read committed", "ro": "off"}]
    in_query = await query(ctx, sql=sql)
    assert in_query.body["rows"] == [{"level": "read committed", "ro": "on"}]


async def test_unique_violation_names_the_constraint(ctx: Context) -> None:
    await execute(ctx, sql="CREATE TABLE people (email text UNIQUE)")
    await execute(ctx, sql="INSERT INTO people VALUES (%s)", parameters=["a@example.com"])
    error = await _error(execute(ctx, sql="INSERT INTO people VALUES (%s)", parameters=["a@example.com"]))
    assert error.code == "UniqueViolation"
    assert error.body == {"sqlstate": "23505", "constraint": "people_email_key", "table": "people"}
    assert "a@example.com" not in error.message  # the detail line quotes the value; the message does not


async def test_undefined_table(ctx: Context) -> None:
    error = await _error(query(ctx, sql="SELECT * FROM missing"))
    assert error.code == "UndefinedTable"
    assert error.message == 'relation "missing" does not exist'


async def test_statement_timeout_cancels_the_statement(ctx: Context) -> None:
    error = await _error(query(ctx, sql="SELECT pg_sleep(10)", timeout=0.2))
    assert error.code == "QueryCanceled"
    assert error.body["sqlstate"] == "57014"
    slow = {**ctx.config, "POSTGRES_DEFAULT_STATEMENT_TIMEOUT": "0.2"}
    configured = await _error(execute(Context(config=slow), sql="SELECT pg_sleep(10)"))
    assert configured.code == "QueryCanceled"
    assert (await query(ctx, sql="SELECT 1 AS still_fine")).body["rows"] == [{"still_fine": 1}]


async def test_the_timeout_holds_for_this_call_only(ctx: Context) -> None:
    await _error(query(ctx, sql="SELECT pg_sleep(10)", timeout=0.1))
    body = (await query(ctx, sql="SELECT current_setting('statement_timeout') AS t")).body
    assert body["rows"] == [{"t": "30s"}]


async def test_unconfigured_connection(ctx: Context) -> None:
    error = await _error(query(ctx, sql="SELECT 1", connection="billing"))
    assert error.code == "ConnectionNotConfigured"
    assert "POSTGRES_BILLING_DSN" in error.message


async def test_unreachable_server_fails_with_the_reason(postgres: PostgresServer) -> None:
    from proxytest.servers import free_port

    ctx = Context(
        config={
            "POSTGRES_DEFAULT_DSN": f"host=127.0.0.1 port={free_port()} dbname=x user=u password=topsecret99",
            "POSTGRES_DEFAULT_POOL_TIMEOUT": "0.5",
        }
    )
    error = await _error(query(ctx, sql="SELECT 1"))
    assert error.code == "ConnectionFailed"
    assert "refused" in error.message.lower()
    assert "topsecret99" not in error.message


async def test_wrong_password_fails_without_repeating_it(postgres: PostgresServer, database: str) -> None:
    ctx = Context(
        config={
            "POSTGRES_DEFAULT_DSN": postgres.dsn(dbname=database, password="wrong-Passw0rd"),
            "POSTGRES_DEFAULT_POOL_TIMEOUT": "0.5",
        }
    )
    error = await _error(query(ctx, sql="SELECT 1"))
    assert error.code == "ConnectionFailed"
    assert "password authentication failed" in error.message
    assert "wrong-Passw0rd" not in error.message and "wrong-Passw0rd" not in repr(error.body)


async def test_connection_parts_override_the_dsn(postgres: PostgresServer, database: str) -> None:
    config = {
        "POSTGRES_PARTS_DSN": f"host=127.0.0.1 port={postgres.port} dbname=postgres",
        "POSTGRES_PARTS_DBNAME": database,
        "POSTGRES_PARTS_USER": "postgres",
        "POSTGRES_PARTS_PASSWORD": postgres.password,
    }
    body = (await query(Context(config=config), connection="parts", sql="SELECT current_database() AS db")).body
    assert body["rows"] == [{"db": database}]
    uri = {"POSTGRES_URI_DSN": postgres.url(dbname=database)}
    assert (await query(Context(config=uri), connection="URI", sql="SELECT 1 AS one")).body["rows"] == [{"one": 1}]


async def test_pool_exhaustion_is_reported_and_the_pool_recovers(ctx: Context) -> None:
    tight = Context(config={**ctx.config, "POSTGRES_DEFAULT_POOL_SIZE": "2", "POSTGRES_DEFAULT_POOL_TIMEOUT": "0.3"})
    outcomes = await asyncio.gather(*(query(tight, sql="SELECT pg_sleep(1)") for _ in range(5)), return_exceptions=True)
    codes = sorted(getattr(outcome, "code", "ok") for outcome in outcomes)
    assert codes == ["PoolTimeout", "PoolTimeout", "PoolTimeout", "ok", "ok"]
    message = next(outcome for outcome in outcomes if isinstance(outcome, CommandError)).message
    assert "all 2 connections of 'default'" in message
    assert (await query(tight, sql="SELECT 1 AS back")).body["rows"] == [{"back": 1}]


async def test_fifty_concurrent_calls_share_a_small_pool(ctx: Context) -> None:
    small = Context(config={**ctx.config, "POSTGRES_DEFAULT_POOL_SIZE": "5"})
    results = await asyncio.gather(
        *(query(small, sql="SELECT %s::int AS n, pg_sleep(0.02)", parameters=[n]) for n in range(50))
    )
    assert sorted(result.body["rows"][0]["n"] for result in results) == list(range(50))


async def test_changed_settings_open_a_new_pool(ctx: Context, postgres: PostgresServer, database: str) -> None:
    await query(ctx, sql="SELECT 1")
    renamed = Context(config={"POSTGRES_DEFAULT_DSN": postgres.dsn(dbname=database) + " application_name=second"})
    body = (await query(renamed, sql="SELECT current_setting('application_name') AS app")).body
    assert body["rows"] == [{"app": "second"}]
    first = (await query(Context(config=ctx.config), sql="SELECT current_setting('application_name') AS app")).body
    assert first["rows"] == [{"app": "spiff-connector-postgres"}]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_rows": 0}, "max_rows must be from 1 to 100000"),
        ({"timeout": -1.0}, "timeout must be more than 0"),
        ({"sql": "  "}, "sql must be a non-empty string"),
        ({"parameters": "x"}, "parameters must be a list, an object or null"),
    ],
)
async def test_invalid_arguments(ctx: Context, arguments: dict[str, Any], message: str) -> None:
    error = await _error(query(ctx, **{"sql": "SELECT 1", **arguments}))
    assert error.code == "InvalidArgument"
    assert message in error.message


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        ([], "statements must hold 1 to 100 statements"),
        ([{"sql": "SELECT 1", "params": []}], "statements[0].params is not a statement field"),
        ([{"sql": "SELECT 1"}, {"parameters": [1]}], "statements[1].sql must be a non-empty string"),
    ],
)
async def test_invalid_statements(ctx: Context, statements: list[dict[str, Any]], message: str) -> None:
    error = await _error(transaction(ctx, statements=statements))
    assert error.code == "InvalidArgument"
    assert message in error.message


async def test_a_write_whose_rows_cannot_be_returned_is_rolled_back(
    ctx: Context, postgres: PostgresServer, database: str
) -> None:
    """The rows are read before the commit: an error is never reported for committed work."""
    await execute(ctx, sql="CREATE TABLE pairs (a int, b int)")
    error = await _error(execute(ctx, sql="INSERT INTO pairs VALUES (1, 2) RETURNING a, b AS a"))
    assert error.code == "DuplicateColumnName"
    assert postgres.execute("SELECT count(*) FROM pairs", dbname=database) == [(0,)]
    arrays = await execute(ctx, sql="INSERT INTO pairs VALUES (1, 2) RETURNING a, b AS a", row_format="arrays")
    assert arrays.body["rows"] == [[1, 2]]
    assert postgres.execute("SELECT count(*) FROM pairs", dbname=database) == [(1,)]


async def test_a_connection_closed_while_idle_is_replaced(
    ctx: Context, postgres: PostgresServer, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spiff_connector_postgres import pools

    await query(ctx, sql="SELECT 1")
    ended = postgres.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
        ["spiff-connector-postgres", database],
    )
    assert ended == [(True,)]
    monkeypatch.setattr(pools, "CHECK_IDLE_AFTER", 0.0)  # as if it had been idle for a while
    assert (await query(ctx, sql="SELECT 2 AS n")).body["rows"] == [{"n": 2}]


async def test_a_failed_call_leaves_its_connection_clean(ctx: Context) -> None:
    """After an error the transaction was rolled back: the next call on that connection works, also once a
    statement ran often enough for a driver to prepare it (the connector prepares none)."""
    small = Context(config={**ctx.config, "POSTGRES_DEFAULT_POOL_SIZE": "1"})
    for _ in range(8):
        assert (await _error(query(small, sql="SELECT 1/0"))).code == "DivisionByZero"
        assert (await query(small, sql="SELECT current_setting('transaction_read_only') AS ro")).body["rows"] == [
            {"ro": "on"}
        ]
        await execute(small, sql="CREATE TEMP TABLE IF NOT EXISTS scratch (n int)")
