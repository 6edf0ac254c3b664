"""A connector's typed configuration: the config mapping validated against its declared model.

An SDK connector may declare ``Connector(config=Model)`` (a pydantic model or a dataclass). The
proxy validates the config mapping against it once, when it loads the connector: what is missing
or invalid becomes a load problem (``/v1/status``, ``connector-proxy check``) and every call of
the connector's commands answers ``503 connector_misconfigured`` until the configuration is fixed,
instead of failing somewhere inside the first call. Messages name the key and the rule, never the
value (which may be a credential).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from connector_proxy.errors import DispatchError, ErrorCode

MAX_LISTED = 10


@dataclass(frozen=True)
class ConfigCheck:
    """The outcome for one connector: the validated ``instance`` or the ``problems`` found."""

    connector: str
    instance: object | None = None
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems

    def refusal(self, command_id: str) -> DispatchError:
        """What a call of one of the connector's commands answers while the config is invalid."""
        listed = "; ".join(self.problems[:MAX_LISTED])
        return DispatchError(
            503,
            ErrorCode.CONNECTOR_MISCONFIGURED,
            f"Connector {self.connector} is misconfigured, so {command_id} cannot run: {listed}.",
        )


def _is_model(model: object) -> bool:
    if not isinstance(model, type):
        return False
    return issubclass(model, BaseModel) or dataclasses.is_dataclass(model)


def _problem(item: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in item["loc"]) or "config"
    return f"{where}: {item['msg']}"


def check_config(connector: str, model: object, config: Mapping[str, Any]) -> ConfigCheck:
    """Validate ``config`` against ``model`` (keys the model does not name are ignored)."""
    if not _is_model(model):
        name = getattr(model, "__name__", type(model).__name__)
        return ConfigCheck(connector, problems=(f"config model {name} is neither a pydantic model nor a dataclass",))
    assert isinstance(model, type)
    try:
        if issubclass(model, BaseModel):
            instance: object = model.model_validate(dict(config))
        else:
            instance = TypeAdapter(model).validate_python(dict(config))  # once, at load
    except ValidationError as error:
        items = error.errors(include_input=False, include_url=False, include_context=False)
        return ConfigCheck(connector, problems=tuple(_problem(item) for item in items))
    except Exception as error:  # a model pydantic cannot use (not fully defined, a bad validator)
        problem = f"config model {model.__name__} cannot be validated: {type(error).__name__}"
        return ConfigCheck(connector, problems=(problem,))
    return ConfigCheck(connector, instance=instance)


def config_problem_lines(check: ConfigCheck) -> list[str]:
    """The load problems a failed check reports, one per key."""
    return [f"{check.connector}: invalid config: {problem}" for problem in check.problems]
