"""The PostgreSQL rows of ``make bench``: a real server (tools/postgres) with a small table, the query the
proxy runs as ``pg/Query``, and its floor: the same query from psycopg directly, with one connection per
concurrent caller and nothing else (no pool, no transaction, no cursor), measured in this process.

wrk measures the proxy; this module measures the floor with the same shape of load (``connections``
callers, each sending its next query as soon as the last one answered) and reports it in wrk's terms.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from wrkrun import Measurement

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "postgres"))
from postgres_server import postgres_server

DATABASE = "bench"
ROWS = 1000
QUERY = "SELECT id, name, price, created FROM items WHERE id = %s"
PARAMETER = 42
COMMAND = "pg/Query"


@contextmanager
def database() -> Iterator[str]:
    """A running server with table ``items`` of ``ROWS`` rows; yield the DSN of its database."""
    with postgres_server() as server:
        server.execute(f"CREATE DATABASE {DATABASE}")
        server.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2), created timestamptz)",
            dbname=DATABASE,
        )
        server.execute(
            "INSERT INTO items SELECT n, 'item ' || n, n * 1.25, TIMESTAMPTZ '2026-01-01' + n * INTERVAL '1 hour' "
            f"FROM generate_series(1, {ROWS}) AS n",
            dbname=DATABASE,
        )
        yield server.dsn(dbname=DATABASE)


def proxy_body() -> dict[str, Any]:
    """The ``/v1/do/pg/Query`` body of the proxy row (connection ``default``)."""
    return {"sql": QUERY, "parameters": [PARAMETER]}


def expected_rows(dsn: str) -> list[dict[str, Any]]:
    """The rows the proxy must answer, as JSON (numeric as a string, timestamps in ISO 8601)."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute(QUERY, [PARAMETER]).fetchone()
    assert row is not None
    return [{"id": row[0], "name": row[1], "price": str(row[2]), "created": row[3].isoformat()}]


async def _caller(dsn: str, until: float, latencies: list[float]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        while (started := time.perf_counter()) < until:
            cursor = await connection.execute(QUERY, [PARAMETER])
            await cursor.fetchall()
            latencies.append(time.perf_counter() - started)


async def _measure(dsn: str, connections: int, seconds: float) -> Measurement:
    latencies: list[float] = []
    begun = time.perf_counter()
    await asyncio.gather(*(_caller(dsn, begun + seconds, latencies) for _ in range(connections)))
    elapsed = time.perf_counter() - begun
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Measurement(
        requests_per_s=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p90_ms=cuts[89] * 1000,
        p99_ms=cuts[98] * 1000,
        max_ms=max(latencies) * 1000,
        requests=len(latencies),
        errors=0,
        non_2xx=0,
        source="psycopg",
    )


def measure_direct(dsn: str, *, connections: int, seconds: float, warmup: float) -> Measurement:
    """The floor: ``connections`` callers sending ``QUERY`` for ``seconds`` (after ``warmup``)."""
    if warmup > 0:
        asyncio.run(_measure(dsn, connections, warmup))
    return asyncio.run(_measure(dsn, connections, seconds))
