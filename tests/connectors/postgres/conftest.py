"""Fixtures for the PostgreSQL connector tests: one real server per session, a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from postgres_server import PostgresServer, postgres_server
from spiff_connector_postgres.pools import close_loop_pools
from spiff_connector_sdk import Context

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
async def database(postgres: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty database; this test's pools are closed before it is dropped."""
    name = f"test_{next(_numbers)}"
    postgres.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        await close_loop_pools()
        postgres.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def config(postgres: PostgresServer, database: str) -> dict[str, Any]:
    """The connection ``default`` to this test's database (as the Connector's config would give it)."""
    return {"POSTGRES_DEFAULT_DSN": postgres.dsn(dbname=database)}


@pytest.fixture
def ctx(config: dict[str, Any]) -> Context:
    return Context(config=config)
