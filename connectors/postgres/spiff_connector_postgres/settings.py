"""A named connection's settings, read from the proxy's ``config`` mapping.

A diagram names a connection (``connection="orders"``); its settings are the config keys
``POSTGRES_ORDERS_*`` (the name upper-cased):

- ``POSTGRES_<NAME>_DSN``: a libpq connection string or ``postgresql://`` URI;
- ``POSTGRES_<NAME>_HOST``, ``_PORT``, ``_DBNAME``, ``_USER``, ``_PASSWORD``, ``_SSLMODE``,
  ``_SSLROOTCERT``: its parts (each Secret key on its own), overriding the DSN's;
- ``POSTGRES_<NAME>_READ_ONLY``: ``true`` makes every transaction on it read-only;
- ``POSTGRES_<NAME>_POOL_SIZE`` (10), ``POSTGRES_<NAME>_POOL_TIMEOUT`` (10 s: how long a call waits
  for a free connection), ``POSTGRES_<NAME>_STATEMENT_TIMEOUT`` (30 s: the default per statement).

Errors name the key, never its value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spiff_connector_postgres.errors import CONNECTION_NOT_CONFIGURED, INVALID_CONNECTION_CONFIG
from spiff_connector_sdk import CommandError

PREFIX = "POSTGRES_"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
PARTS = ("host", "port", "dbname", "user", "password", "sslmode", "sslrootcert")
DEFAULT_POOL_SIZE = 10
MAX_POOL_SIZE = 100
DEFAULT_POOL_TIMEOUT = 10.0
DEFAULT_STATEMENT_TIMEOUT = 30.0
MAX_STATEMENT_TIMEOUT = 3600.0
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach one named database, and the limits of its pool."""

    name: str
    conninfo: str
    password: str
    read_only: bool = False
    pool_size: int = DEFAULT_POOL_SIZE
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings never to repeat in a message: the password and the whole connection string."""
        return tuple(secret for secret in (self.password, self.conninfo) if len(secret) >= 3)


def _invalid(key: str, expected: str) -> CommandError:
    return CommandError(INVALID_CONNECTION_CONFIG, f"config {key} must be {expected}")


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid(key, "a string")
    return str(value)


def _flag(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key)
    if isinstance(value, bool):
        return value
    text = (_text(config, key) or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _invalid(key, "true or false")


def _number(
    config: Mapping[str, Any], key: str, default: float, low: float, high: float, *, whole: bool = False
) -> float:
    value = config.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high or (whole and not number.is_integer()):
        raise _invalid(key, f"a {'whole ' if whole else ''}number from {low:g} to {high:g}")
    return number


_KEYS = ("DSN", *(part.upper() for part in PARTS), "READ_ONLY", "POOL_SIZE", "POOL_TIMEOUT", "STATEMENT_TIMEOUT")


def connection_settings(config: Mapping[str, Any], name: str) -> ConnectionSettings:
    """The settings of connection ``name``; a ``CommandError`` when absent or invalid.

    Parsed once per distinct set of values (a call would otherwise parse the DSN every time)."""
    prefix = f"{PREFIX}{name.upper()}_"
    values = tuple(config.get(prefix + key) for key in _KEYS)
    try:
        return _parsed(name, values)
    except TypeError:  # an unhashable value (a list, an object): parse it, to report it
        return _parse({prefix + key: value for key, value in zip(_KEYS, values, strict=True)}, name)


@functools.lru_cache(maxsize=256)
def _parsed(name: str, values: tuple[Any, ...]) -> ConnectionSettings:
    prefix = f"{PREFIX}{name.upper()}_"
    return _parse({prefix + key: value for key, value in zip(_KEYS, values, strict=True)}, name)


def _parse(config: Mapping[str, Any], name: str) -> ConnectionSettings:
    if not NAME.match(name):
        raise CommandError(
            CONNECTION_NOT_CONFIGURED,
            "connection must be a name of letters, digits and '_' starting with a letter (at most 63)",
        )
    prefix = f"{PREFIX}{name.upper()}_"
    dsn = _text(config, prefix + "DSN")
    parts = {part: text for part in PARTS if (text := _text(config, prefix + part.upper())) is not None}
    if dsn is None and "host" not in parts:
        raise CommandError(
            CONNECTION_NOT_CONFIGURED,
            f"connection {name!r} is not configured: set config {prefix}DSN (or {prefix}HOST and its parts)",
        )
    import psycopg  # loaded with the connector's first call, not with the connector
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        conninfo = make_conninfo(dsn or "", **parts)
        password = conninfo_to_dict(conninfo).get("password") or ""
    except psycopg.ProgrammingError:
        raise _invalid(prefix + "DSN", "a libpq connection string or a postgresql:// URI") from None
    if "port" in parts and not parts["port"].isdigit():
        raise _invalid(prefix + "PORT", "a port number")
    return ConnectionSettings(
        name=name.lower(),
        conninfo=conninfo,
        password=str(password),
        read_only=_flag(config, prefix + "READ_ONLY"),
        pool_size=int(_number(config, prefix + "POOL_SIZE", DEFAULT_POOL_SIZE, 1, MAX_POOL_SIZE, whole=True)),
        pool_timeout=_number(config, prefix + "POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT, 0.1, 600),
        statement_timeout=_number(
            config, prefix + "STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT, 0.001, MAX_STATEMENT_TIMEOUT
        ),
    )
