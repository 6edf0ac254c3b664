"""The connector's error codes (the BPMN error codes a diagram's boundary events catch).

A failure PostgreSQL reports is named by its SQLSTATE's class name in psycopg (``UniqueViolation``,
``QueryCanceled`` for a statement timeout, ``ReadOnlySqlTransaction``, ``SyntaxError``,
``UndefinedTable``, ...): the body then has ``sqlstate`` and, where the server named them,
``constraint``, ``table`` and ``column``. The codes below are the connector's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spiff_connector_sdk import CommandError

if TYPE_CHECKING:
    import psycopg

CONNECTION_NOT_CONFIGURED = "ConnectionNotConfigured"
INVALID_CONNECTION_CONFIG = "InvalidConnectionConfig"
INVALID_ARGUMENT = "InvalidArgument"
CONNECTION_FAILED = "ConnectionFailed"
POOL_TIMEOUT = "PoolTimeout"
DUPLICATE_COLUMN = "DuplicateColumnName"
DATABASE_ERROR = "DatabaseError"  # an error without an SQLSTATE, e.g. the connection broke mid-call

_DIAGNOSTICS = ("constraint_name", "table_name", "column_name")


def code_of(error: psycopg.Error) -> str:
    """``UniqueViolation`` for SQLSTATE 23505, and so on; ``DatabaseError`` without an SQLSTATE."""
    import psycopg.errors  # loaded by then: ``error`` is one of its exceptions

    if error.sqlstate:
        try:
            return psycopg.errors.lookup(error.sqlstate).__name__
        except KeyError:
            return DATABASE_ERROR
    return DATABASE_ERROR


def database_error(error: psycopg.Error, *, scrub: tuple[str, ...], statement: int | None = None) -> CommandError:
    """The command error for a failure PostgreSQL (or libpq) reported.

    The message is the server's primary message (never the parameters' values it was given, which
    the detail line could quote); ``scrub`` lists strings (the connection's password) replaced by
    ``***`` wherever they occur.
    """
    message = primary_message(error)
    if statement is not None:
        message = f"statement {statement + 1} failed: {message}"
    body: dict[str, Any] = {"sqlstate": error.sqlstate}
    for name in _DIAGNOSTICS:
        value = getattr(error.diag, name)
        if value:
            body[name.removesuffix("_name")] = value
    if statement is not None:
        body["statement"] = statement
    return CommandError(code_of(error), scrubbed(message, scrub), body=body)


def primary_message(error: psycopg.Error) -> str:
    """The server's primary message, else the first line of libpq's."""
    if error.diag.message_primary:
        return error.diag.message_primary
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def scrubbed(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def invalid_argument(message: str) -> CommandError:
    return CommandError(INVALID_ARGUMENT, message)
