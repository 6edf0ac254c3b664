"""The PostgreSQL connector behind a real proxy: spiff-arena's request → proxy → a real server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from conftest import ProxyFactory
from postgres_server import PostgresServer
from proxytest.protocol import validate_do_response

SPIFF_KEYS = {"spiff__process_instance_id": 7, "spiff__task_id": "t1", "spiff__task_data": {}}


@pytest.fixture
def pg_proxy(start_proxy: ProxyFactory, postgres: PostgresServer, database: str) -> str:
    postgres.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)", dbname=database)
    config = {
        "POSTGRES_NOTES_HOST": "127.0.0.1",
        "POSTGRES_NOTES_PORT": str(postgres.port),
        "POSTGRES_NOTES_DBNAME": database,
        "POSTGRES_NOTES_USER": "postgres",
        "POSTGRES_NOTES_PASSWORD": postgres.password,
        "POSTGRES_NOTES_POOL_SIZE": "4",
        "POSTGRES_NOTES_POOL_TIMEOUT": "5",
    }
    return start_proxy(config=config)


def _do(client: httpx.Client, command: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/do/pg/{command}", json={**params, **SPIFF_KEYS})
    body: dict[str, Any] = response.json()
    validate_do_response(response.status_code, body)
    assert response.status_code == 200, body
    return body


def test_the_catalog_describes_the_commands(pg_proxy: str) -> None:
    commands = {entry["id"]: entry for entry in httpx.get(f"{pg_proxy}/v1/commands", timeout=10).json()}
    assert {"pg/Query", "pg/Execute", "pg/Transaction"} <= set(commands)
    query = {param["id"]: param for param in commands["pg/Query"]["parameters"]}
    assert query["sql"]["required"] is True
    assert query["connection"]["required"] is False
    assert {"connection", "sql", "parameters", "max_rows", "row_format", "timeout"} == set(query)
    assert all(param.get("schema", {}).get("writeOnly") is not True for param in query.values())


def test_insert_then_query_through_the_proxy(
    pg_proxy: str, caplog: pytest.LogCaptureFixture, postgres: PostgresServer
) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=pg_proxy, timeout=30) as client:
        inserted = _do(
            client,
            "Execute",
            {
                "connection": "notes",
                "sql": "INSERT INTO notes (body) VALUES (%s), (%s) RETURNING id",
                "parameters": ["a", "b"],
            },
        )
        assert inserted["error"] is None
        assert inserted["command_response"]["body"]["rows"] == [{"id": 1}, {"id": 2}]
        found = _do(
            client, "Query", {"connection": "notes", "sql": "SELECT body FROM notes WHERE id = %s", "parameters": [2]}
        )
        assert found["command_response"]["body"]["rows"] == [{"body": "b"}]
        assert found["spiff__logs"] == ["pg/Query on 'notes': 1 rows"]
        failed = _do(client, "Execute", {"connection": "notes", "sql": "INSERT INTO notes (body) VALUES (NULL)"})
        assert failed["error"]["error_code"] == "NotNullViolation"
        assert failed["command_response"]["body"]["sqlstate"] == "23502"
        missing = client.post("/v1/do/pg/Query", json={"connection": "notes"})
        assert missing.status_code == 400
        assert missing.json()["error"]["error_code"] == "missing_parameter"
        wrong_type = client.post("/v1/do/pg/Query", json={"sql": "SELECT 1", "max_rows": "10"})
        assert wrong_type.json()["error"]["error_code"] == "invalid_parameter"
    assert postgres.password not in caplog.text


def test_fifty_concurrent_slow_calls_leave_the_proxy_responsive(pg_proxy: str) -> None:
    """Four connections, fifty calls of 0.2 s each: they queue for the pool while the proxy keeps answering."""

    async def run() -> tuple[list[dict[str, Any]], list[int]]:
        async with httpx.AsyncClient(base_url=pg_proxy, timeout=60, limits=httpx.Limits(max_connections=60)) as client:
            params = {"connection": "notes", "sql": "SELECT %s::int AS n, pg_sleep(0.2)"}
            calls = [
                asyncio.create_task(client.post("/v1/do/pg/Query", json={**params, "parameters": [n]}))
                for n in range(50)
            ]
            statuses = []
            for _ in range(5):  # the catalog and liveness answer while every connection is busy
                await asyncio.sleep(0.1)
                statuses.append((await client.get("/v1/liveness", timeout=5)).status_code)
                statuses.append((await client.get("/v1/commands", timeout=5)).status_code)
            responses = await asyncio.gather(*calls)
            return [response.json() for response in responses], statuses

    bodies, statuses = asyncio.run(run())
    assert statuses == [200] * 10
    assert sorted(body["command_response"]["body"]["rows"][0]["n"] for body in bodies) == list(range(50))
    assert all(body["error"] is None for body in bodies)
