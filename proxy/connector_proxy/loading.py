"""What loading connectors produced: commands, auths and the problems met on the way."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from connector_proxy.commands import Command

logger = logging.getLogger("connector_proxy.loading")


@dataclass(frozen=True)
class AuthEntry:
    """An authentication listed in ``/v1/auths``; ``target`` is its class or SDK spec."""

    id: str
    connector: str
    entry: dict[str, Any]
    target: Any = None

    def catalog_entry(self) -> dict[str, Any]:
        return self.entry


@dataclass(frozen=True)
class RemoteAuthTarget:
    """An auth served by a connector workload (Kubernetes mode): browser requests are forwarded
    to ``endpoint`` with X-Forwarded-* headers; ``api_key`` is the workload's own key, if any."""

    endpoint: str
    api_key: str | None = field(default=None, repr=False)


@dataclass
class LoadResult:
    commands: list[Command] = field(default_factory=list)
    auths: list[AuthEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        """Record a load failure (a message without exception text, which may hold secrets)."""
        logger.error("connector load problem", extra={"problem": message})
        self.problems.append(message)

    def extend(self, other: LoadResult) -> None:
        self.commands.extend(other.commands)
        self.auths.extend(other.auths)
        self.problems.extend(other.problems)
