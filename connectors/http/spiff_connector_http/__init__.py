"""First-party HTTP connector for spiff-arena: ``http/GetRequestV2``, ``http/HeadRequestV2``,
``http/PostRequestV2``, ``http/PutRequestV2``, ``http/PatchRequestV2`` and ``http/DeleteRequestV2``.

The proxy loads :data:`connector` through the ``connector_proxy.connectors``
entry point and enters its lifespan, which owns the one pooled HTTP client
shared by every call.
"""

from spiff_connector_http.client import lifespan
from spiff_connector_http.commands import COMMANDS
from spiff_connector_sdk import Connector

connector = Connector(
    "http",
    description="HTTP requests (GET, HEAD, POST, PUT, PATCH, DELETE) with JSON/XML/text responses",
    lifespan=lifespan,
)
for _name, _func in COMMANDS.items():
    connector.command(_name)(_func)

__all__ = ["connector"]
