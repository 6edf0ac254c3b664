"""Reading a failure by what caused it: a TLS error or a timeout often arrives wrapped in the
exception of the library that met it."""

from __future__ import annotations

MAX_CHAIN = 16


def exception_chain(exc: BaseException, limit: int = MAX_CHAIN) -> list[BaseException]:
    """``exc`` and what it was raised from (or during), outermost first; at most ``limit``
    exceptions, each once (a chain that loops back ends there)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < limit and all(current is not seen for seen in found):
        found.append(current)
        current = current.__cause__ or current.__context__
    return found
