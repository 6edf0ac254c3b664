"""The per-invocation context handed to SDK commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Context:
    """What a command knows about the call besides its parameters.

    - ``config``: the proxy's connector configuration (credentials live here).
    - ``typed_config``: that configuration validated against the connector's ``config`` model
      when the proxy loaded it (``None`` when the connector declares none); see
      :meth:`config_as`.
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
    typed_config: object | None = None

    def log(self, message: str) -> None:
        """Append a line to ``spiff__logs``."""
        self.logs.append(message)

    def config_as(self, model: type[T]) -> T:
        """The configuration as the connector's declared ``config`` model, validated at load.

        ``TypeError`` when the connector declares another model (or none): the proxy validates
        only the model given to ``Connector(config=...)``.
        """
        if not isinstance(self.typed_config, model):
            declared = type(self.typed_config).__name__ if self.typed_config is not None else "no config model"
            raise TypeError(
                f"the connector declares {declared}, not {model.__name__}; pass it as Connector(config=...)"
            )
        return self.typed_config
