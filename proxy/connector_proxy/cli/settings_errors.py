"""Settings read once for a sub-command; a bad value exits 2 naming the variable, never its value."""

from __future__ import annotations

import re
import sys
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

S = TypeVar("S", bound=BaseSettings)

USAGE_ERROR = 2
_FIELD = re.compile(r'field "([a-z0-9_]+)"')


def _variable(prefix: str, field: str) -> str:
    return prefix + field.upper()


def settings_problems(factory: type[S], prefix: str) -> tuple[S | None, list[str]]:
    """The settings, or the lines saying what is wrong (``CONNECTOR_PROXY_CONFIG: ...``)."""
    try:
        return factory(), []
    except SettingsError as error:  # a complex value (a list, an object) that is not JSON
        found = _FIELD.search(str(error))
        name = _variable(prefix, found.group(1)) if found else prefix + "*"
        return None, [f"{name}: not valid JSON (this setting takes a JSON value)"]
    except ValidationError as error:
        lines = []
        for item in error.errors(include_input=False, include_url=False):
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["loc"]:
                lines.append(f"{_variable(prefix, '_'.join(str(x) for x in item['loc']))}: {message}")
            else:  # a check across fields: its message names the variables
                lines.append(message)
        return None, lines


def settings_or_exit(factory: type[S], prefix: str) -> S:
    """Read settings; on a bad value print each offending variable (never its value) and exit 2."""
    settings, problems = settings_problems(factory, prefix)
    if settings is None:
        print("connector-proxy: invalid settings:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)
    return settings
