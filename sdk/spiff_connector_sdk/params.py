"""Parameter metadata attached with ``typing.Annotated``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Param:
    """Describes one command parameter beyond what its type hint says.

    Use it as ``Annotated[str, Param("The URL to call", secret=False)]``.

    - ``description``: shown to BPMN authors next to the parameter.
    - ``secret``: the value is a credential; the catalog marks it ``writeOnly``
      and the proxy never logs or echoes it.
    - ``examples``: example values for the catalog's JSON Schema.
    - ``schema``: extra JSON Schema keywords merged into the derived schema.
    """

    description: str | None = None
    secret: bool = False
    examples: tuple[Any, ...] = ()
    schema: dict[str, Any] = field(default_factory=dict)
