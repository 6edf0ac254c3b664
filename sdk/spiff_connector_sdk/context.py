"""The per-invocation context handed to SDK commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Context:
    """What a command knows about the call besides its parameters.

    - ``config``: the proxy's connector configuration (credentials live here).
    - ``task_data``: the BPMN task's data (``spiff__task_data``).
    - ``callback_url``: where a long-running command PUTs its final envelope.
    - ``logs``: lines returned to spiff-arena as ``spiff__logs``; never put
      secrets in them.
    """

    config: Mapping[str, Any] = field(default_factory=dict)
    task_data: Mapping[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    process_instance_id: int | None = None
    process_model_identifier: str | None = None
    task_id: str | None = None
    logs: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        """Append a line to ``spiff__logs``."""
        self.logs.append(message)
