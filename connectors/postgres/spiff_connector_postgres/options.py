"""What a call may ask for, in the connector's own terms: row formats, isolation levels, the limits
of one call and its statements.

Free of the driver, as :mod:`~spiff_connector_postgres.commands`, :mod:`~spiff_connector_postgres.settings`
and :mod:`~spiff_connector_postgres.pools` are at import: the proxy loads the connector (and starts)
without loading psycopg and libpq, which the first call does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from spiff_connector_postgres.values import Parameters

RowFormat = Literal["objects", "arrays"]
Isolation = Literal["read committed", "repeatable read", "serializable"]


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Parameters = None


@dataclass(frozen=True)
class Limits:
    """Per call: rows kept per statement, the shape of a row, seconds per statement."""

    max_rows: int
    row_format: RowFormat
    timeout: float
