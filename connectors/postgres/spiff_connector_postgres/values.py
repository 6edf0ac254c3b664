"""Values across the boundary: JSON parameters to what psycopg binds, column values to JSON.

Parameters arrive as JSON values. Strings, numbers, booleans and null bind as themselves; a list of
those binds as a PostgreSQL array (``= ANY(%s)``); an object, or a list holding an object or a list,
binds as ``jsonb``.

Column values leave as JSON values (see the README's "Types" table): numbers stay numbers except
``numeric``, which is a string so that no digit is lost; dates and times are ISO 8601 strings;
intervals are seconds; ``bytea`` is base64; ``uuid``, ``inet`` and unknown types are their text;
arrays are lists; ``json``/``jsonb`` are their parsed value; ranges are objects.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import ipaddress
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb
from psycopg.types.range import Range

Parameters = Sequence[Any] | Mapping[str, Any] | None

_SCALARS = (str, int, float, bool, type(None))


def _bindable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Jsonb(value)
    if isinstance(value, list):
        if all(isinstance(item, _SCALARS) for item in value):
            return value
        return Jsonb(value)
    return value


def bind(parameters: Parameters) -> Sequence[Any] | Mapping[str, Any] | None:
    """The values psycopg binds for ``%s`` (a list) or ``%(name)s`` (an object) placeholders."""
    if parameters is None:
        return None
    if isinstance(parameters, Mapping):
        return {key: _bindable(value) for key, value in parameters.items()}
    return [_bindable(value) for value in parameters]


def _seconds(delta: datetime.timedelta) -> int | float:
    seconds = delta.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def to_json(value: Any) -> Any:
    """A column value as a JSON-safe value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return _seconds(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, Range):
        return _range(value)
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    return str(value)


def _range(value: Range[Any]) -> dict[str, Any]:
    if value.isempty:
        return {"empty": True}
    return {"lower": to_json(value.lower), "upper": to_json(value.upper), "bounds": value.bounds}
