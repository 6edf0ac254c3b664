"""A connection's settings from config keys: defaults, parts over the DSN, errors naming the key only."""

from __future__ import annotations

from typing import Any

import pytest

from spiff_connector_postgres.settings import connection_settings
from spiff_connector_sdk import CommandError


def test_defaults_and_case() -> None:
    settings = connection_settings({"POSTGRES_MAIN_DSN": "host=db dbname=app password=s3cret-pw"}, "Main")
    assert settings.name == "main"
    assert (settings.read_only, settings.pool_size, settings.pool_timeout, settings.statement_timeout) == (
        False,
        10,
        10.0,
        30.0,
    )
    assert settings.password == "s3cret-pw"
    assert "s3cret-pw" in settings.secrets


def test_parts_override_the_dsn() -> None:
    config = {
        "POSTGRES_X_DSN": "postgresql://a:old-pw@db1:5432/one",
        "POSTGRES_X_HOST": "db2",
        "POSTGRES_X_PASSWORD": "new-pw",
    }
    settings = connection_settings(config, "x")
    assert "host=db2" in settings.conninfo and "dbname=one" in settings.conninfo
    assert settings.password == "new-pw"


def test_parts_alone_and_options() -> None:
    config: dict[str, Any] = {
        "POSTGRES_R_HOST": "db",
        "POSTGRES_R_PORT": 6432,
        "POSTGRES_R_READ_ONLY": True,
        "POSTGRES_R_POOL_SIZE": "3",
        "POSTGRES_R_POOL_TIMEOUT": 2,
        "POSTGRES_R_STATEMENT_TIMEOUT": "0.5",
    }
    settings = connection_settings(config, "r")
    assert "port=6432" in settings.conninfo
    assert (settings.read_only, settings.pool_size, settings.pool_timeout, settings.statement_timeout) == (
        True,
        3,
        2.0,
        0.5,
    )
    assert settings.secrets == (settings.conninfo,)


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        ({}, "ConnectionNotConfigured", "set config POSTGRES_MAIN_DSN (or POSTGRES_MAIN_HOST and its parts)"),
        ({"POSTGRES_MAIN_DSN": "host=db =broken pw"}, "InvalidConnectionConfig", "config POSTGRES_MAIN_DSN must be"),
        (
            {"POSTGRES_MAIN_HOST": "db", "POSTGRES_MAIN_PORT": "54x"},
            "InvalidConnectionConfig",
            "POSTGRES_MAIN_PORT must be a port",
        ),
        (
            {"POSTGRES_MAIN_DSN": "host=db", "POSTGRES_MAIN_READ_ONLY": "maybe"},
            "InvalidConnectionConfig",
            "POSTGRES_MAIN_READ_ONLY must be true or false",
        ),
        (
            {"POSTGRES_MAIN_DSN": "host=db", "POSTGRES_MAIN_POOL_SIZE": "2.5"},
            "InvalidConnectionConfig",
            "a whole number from 1 to 100",
        ),
        (
            {"POSTGRES_MAIN_DSN": "host=db", "POSTGRES_MAIN_POOL_SIZE": "0"},
            "InvalidConnectionConfig",
            "POOL_SIZE must be",
        ),
        (
            {"POSTGRES_MAIN_DSN": "host=db", "POSTGRES_MAIN_POOL_TIMEOUT": "soon"},
            "InvalidConnectionConfig",
            "POOL_TIMEOUT must be a number",
        ),
        (
            {"POSTGRES_MAIN_DSN": "host=db", "POSTGRES_MAIN_STATEMENT_TIMEOUT": True},
            "InvalidConnectionConfig",
            "STATEMENT_TIMEOUT",
        ),
        ({"POSTGRES_MAIN_DSN": ["host=db"]}, "InvalidConnectionConfig", "POSTGRES_MAIN_DSN must be a string"),
    ],
)
def test_errors_name_the_key_never_the_value(config: dict[str, Any], code: str, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        connection_settings(config, "main")
    assert caught.value.code == code
    assert message in caught.value.message
    for value in config.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in caught.value.message


@pytest.mark.parametrize("name", ["", "1st", "a-b", "x" * 64, "semi;colon"])
def test_invalid_connection_names(name: str) -> None:
    with pytest.raises(CommandError) as caught:
        connection_settings({}, name)
    assert caught.value.code == "ConnectionNotConfigured"
    assert "letters, digits and '_'" in caught.value.message
