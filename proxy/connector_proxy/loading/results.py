"""What loading connectors produced: commands, auths and the problems met on the way."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from connector_proxy.auths import AuthEntry
from connector_proxy.commands import Command

logger = logging.getLogger(__name__)


@dataclass
class LoadResult:
    commands: list[Command] = field(default_factory=list)
    auths: list[AuthEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    config_problems: list[str] = field(default_factory=list)
    """The subset of ``problems`` that are invalid connector configuration (the connector is
    loaded; its calls are refused until the configuration is fixed)."""

    def problem(self, message: str, *, config: bool = False) -> None:
        """Record a load failure (a message without exception text, which may hold secrets)."""
        logger.error("connector load problem", extra={"problem": message})
        self.problems.append(message)
        if config:
            self.config_problems.append(message)

    def extend(self, other: LoadResult) -> None:
        self.commands.extend(other.commands)
        self.auths.extend(other.auths)
        self.problems.extend(other.problems)
        self.config_problems.extend(other.config_problems)
