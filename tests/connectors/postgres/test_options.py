"""The connector loads without its driver: psycopg and libpq load with the first call."""

from __future__ import annotations

from proxytest.imports import BUILD_EMBEDDED_PROXY, packages_imported_by


def test_a_proxy_serving_the_connector_loads_psycopg_only_when_called() -> None:
    """psycopg with libpq is about 150 ms and 9 MiB of a proxy's start-up that no call needed yet."""
    loaded = packages_imported_by(BUILD_EMBEDDED_PROXY + "assert 'pg/Query' in app.state.proxy.registry.commands\n")
    assert "spiff_connector_postgres" in loaded
    assert not loaded & {"psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c"}
