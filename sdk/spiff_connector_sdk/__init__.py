"""Typed SDK for spiff-arena connectors.

A connector package creates one :class:`Connector`, declares its commands with
:meth:`Connector.command` and exposes the connector through the
``connector_proxy.connectors`` entry point group::

    from typing import Annotated
    from spiff_connector_sdk import Connector, Context, Param, Result

    connector = Connector("greeter", description="Says hello")

    @connector.command("Hello")
    async def hello(ctx: Context, name: Annotated[str, Param("Who to greet")]) -> Result:
        \"\"\"Greet somebody.\"\"\"
        return Result(body={"greeting": f"Hello {name}"})

The SDK has no third-party dependencies: the proxy derives the catalog (types,
JSON Schema, descriptions) from these declarations.
"""

from spiff_connector_sdk.connector import AuthSpec, CommandSpec, Connector, OAuth2Settings
from spiff_connector_sdk.context import Context
from spiff_connector_sdk.params import Param
from spiff_connector_sdk.result import Accepted, CommandError, ErrorInfo, Result

__all__ = [
    "Accepted",
    "AuthSpec",
    "CommandError",
    "CommandSpec",
    "Connector",
    "Context",
    "ErrorInfo",
    "OAuth2Settings",
    "Param",
    "Result",
]
