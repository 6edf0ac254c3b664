"""Call a connector's command in a plain test, exactly as the proxy would, without a server.

::

    from spiff_connector_sdk.testing import call
    from my_connector import connector

    def test_hello() -> None:
        answer = call(connector, "Hello", {"name": "Ada"}, config={"GREETING": "Hi"})
        assert answer.status == 200
        assert answer.body == {"greeting": "Hi Ada"}

    def test_a_missing_name() -> None:
        assert call(connector, "Hello", {}).error_code == "missing_parameter"

The command runs inside the proxy's own app (the connector's lifespan entered, the request handled
in process): the parameters are bound and validated as the proxy does (JSON types, the schema
keywords a ``Param`` declares), the answer is the proxy's envelope with its status and error codes.
It needs the ``spiff-connector-proxy`` package installed (it runs that code); the rest of the SDK
does not. ``acall`` is the same for async tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spiff_connector_sdk.connector import Connector


@dataclass(frozen=True)
class Answer:
    """What the proxy answered: the HTTP status and the JSON envelope."""

    status: int
    envelope: dict[str, Any]

    @property
    def error(self) -> dict[str, Any] | None:
        error: dict[str, Any] | None = self.envelope.get("error")
        return error

    @property
    def error_code(self) -> str | None:
        return self.error.get("error_code") if self.error else None

    @property
    def body(self) -> Any:
        return (self.envelope.get("command_response") or {}).get("body")

    @property
    def logs(self) -> list[str]:
        logs: list[str] = self.envelope.get("spiff__logs") or []
        return logs


async def acall(
    connector: Connector,
    command: str,
    params: Mapping[str, Any] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    task_data: Mapping[str, Any] | None = None,
) -> Answer:
    """POST ``/v1/do/<connector>/<command>`` with ``params`` to a proxy serving only ``connector``."""
    from connector_proxy.app import create_app
    from connector_proxy.in_process import post_in_process
    from connector_proxy.loading.embedded import EmbeddedConnectors
    from connector_proxy.loading.sdk import load_sdk_connector
    from connector_proxy.registry import Registry
    from connector_proxy.settings import Settings

    loaded = load_sdk_connector(connector, config)
    broken = [problem for problem in loaded.problems if problem not in loaded.config_problems]
    if broken:  # invalid config is not among them: the call answers connector_misconfigured
        raise ValueError("the proxy cannot load this connector: " + "; ".join(broken))
    embedded = EmbeddedConnectors(registry=Registry.build(loaded.commands, loaded.auths), connectors=(connector,))
    app = create_app(Settings(config=dict(config or {}), kubernetes=False), embedded=embedded)
    body: dict[str, Any] = dict(params or {})
    if task_data is not None:
        body["spiff__task_data"] = dict(task_data)
    response = await post_in_process(app, f"/v1/do/{connector.name}/{command}", body)
    return Answer(status=response.status_code, envelope=response.json())


def call(
    connector: Connector,
    command: str,
    params: Mapping[str, Any] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    task_data: Mapping[str, Any] | None = None,
) -> Answer:
    """:func:`acall` from synchronous code (not from inside a running event loop: use ``acall`` there)."""
    return asyncio.run(acall(connector, command, params, config=config, task_data=task_data))
