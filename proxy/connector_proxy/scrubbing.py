"""Removing a request's values from text before it is shown: exception messages and tracebacks.

A command's exception text is what its operator needs ("Unsupported operator 'LIKE'"), but it
may quote what the command was given: a password parameter, a token from ``config``. Every
string and number among the parameters and the configuration (nested ones too), at least
:data:`MIN_LENGTH` characters long, becomes :data:`MASK` wherever it occurs in the text, also in
its ``repr`` and JSON spellings (``'it\\'s'``, ``"say \\"hi\\""``), longest first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

MASK = "***"
MIN_LENGTH = 3  # shorter values cannot be told from ordinary text (and make no secret)
MAX_VALUES = 10_000  # a bound on the work, for requests with huge parameters
MAX_DEPTH = 32


def _leaves(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _leaves(item, depth + 1)


def _spellings(value: str) -> Iterator[str]:
    yield value
    yield repr(value)[1:-1]
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]


class Scrubber:
    def __init__(self, sources: Iterable[Any]) -> None:
        found: set[str] = set()
        for leaf in (leaf for source in sources for leaf in _leaves(source)):
            if len(leaf) >= MIN_LENGTH:
                found.update(s for s in _spellings(leaf) if len(s) >= MIN_LENGTH)
            if len(found) >= MAX_VALUES:  # over all sources, not per source
                break
        ordered = sorted(found, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text
