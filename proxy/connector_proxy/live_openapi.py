"""The OpenAPI document served at ``/openapi.json`` (and shown by ``/docs``): the protocol
document's operations and schemas, the proxy's own routes, and one operation per registered
command, ``POST /v1/do/<connector>/<Command>``, whose request body is built from the catalog.

A parameter's JSON Schema is stated only where the proxy enforces it (SDK commands, validated at
dispatch: a value of another type is a ``400 invalid_parameter``). Community commands, like the
reference proxy, pass values through unchecked, and a Kubernetes-mode proxy cannot tell what a
workload checks: their parameters take any JSON value, the declared type is in the description.
Required parameters, unknown ones (refused unless the command takes ``**kwargs``) and the
reserved ``spiff__*`` keys the proxy checks are stated for all.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PROTOCOL_RESOURCE = "protocol.openapi.json"  # the protocol document, as docs/protocol/openapi.json
API_KEY_SCHEME = "ConnectorProxyApiKey"
DO_TEMPLATE = "/v1/do/{connector}/{command}"
PROTOCOL_PATHS = ("/v1/commands", "/v1/auths", DO_TEMPLATE)
# Routes the API key guards besides the protocol's (docs/errors.md, "API key").
KEYED_PATHS = ("/v1/status",)


@dataclass(frozen=True)
class CommandShape:
    """What the document says of one command: its catalog entry, whether the proxy checks its
    parameters' types (``typed``) and whether it refuses parameters it does not list (``closed``)."""

    entry: Mapping[str, Any]
    typed: bool
    closed: bool


@cache
def _protocol_text() -> str:
    return (resources.files("connector_proxy") / PROTOCOL_RESOURCE).read_text(encoding="utf-8")


def protocol_document() -> dict[str, Any]:
    """A fresh copy of the protocol document shipped with the package."""
    document: dict[str, Any] = json.loads(_protocol_text())
    return document


def _operation_id(command_id: str) -> str:
    return "do_" + re.sub(r"[^A-Za-z0-9]+", "_", command_id).strip("_")


def _untyped(schema: Mapping[str, Any], declared: str | None, description: str | None) -> dict[str, Any]:
    text = description or ""
    if declared:
        text = f"{text} (declared type: {declared}; not checked by the proxy)".strip()
    loose: dict[str, Any] = {"description": text} if text else {}
    if "default" in schema:
        loose["default"] = schema["default"]
    if schema.get("writeOnly"):
        loose["writeOnly"] = True
    return loose


def request_schema(shape: CommandShape) -> dict[str, Any]:
    """The JSON Schema of a ``/v1/do`` body for one command."""
    entry, typed = shape.entry, shape.typed
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in entry.get("parameters", []):
        name = parameter["id"]
        schema = dict(parameter.get("schema") or {})
        description = parameter.get("description")
        if typed:
            if description:
                schema.setdefault("description", description)
            properties[name] = schema
        else:
            properties[name] = _untyped(schema, parameter.get("type"), description)
        if parameter.get("required"):
            required.append(name)
    properties["spiff__task_data"] = {
        "type": ["object", "null"],
        "description": "The task's data, as spiff-arena sends it; the command may read it.",
    }
    if entry.get("accepts_callback"):
        properties["spiff__callback_url"] = {
            "type": "string",
            "description": "Where spiff-arena waits for the result; the command answers 202 and completes there.",
        }
    body: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        body["required"] = required
    if shape.closed:  # other spiff__* keys are ignored, never refused
        body["patternProperties"] = {"^spiff__": {}}
        body["additionalProperties"] = False
    return body


def command_path_item(shape: CommandShape, do_operation: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /v1/do/<id>``: the protocol's ``/v1/do`` operation, for this one command."""
    entry = shape.entry
    command_id: str = entry["id"]
    operation = copy.deepcopy(dict(do_operation))
    operation.pop("parameters", None)
    operation["operationId"] = _operation_id(command_id)
    operation["tags"] = [command_id.split("/", 1)[0]]
    operation["summary"] = command_id
    if entry.get("description"):
        operation["description"] = entry["description"]
    if not entry.get("accepts_callback"):
        operation["responses"].pop("202", None)
        operation.pop("callbacks", None)
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": request_schema(shape)}},
    }
    return {"post": operation}


def live_document(base: Mapping[str, Any], commands: Iterable[CommandShape], *, api_key: bool) -> dict[str, Any]:
    """``base`` (FastAPI's document of the app's routes) with the protocol's operations, schemas
    and security scheme, and a ``POST /v1/do/<id>`` per command."""
    protocol = protocol_document()
    document = copy.deepcopy(dict(base))
    paths: dict[str, Any] = document.setdefault("paths", {})
    for path in PROTOCOL_PATHS:
        paths[path] = copy.deepcopy(protocol["paths"][path])
    do_operation = protocol["paths"][DO_TEMPLATE]["post"]
    for shape in sorted(commands, key=lambda item: str(item.entry["id"])):
        paths[f"/v1/do/{shape.entry['id']}"] = command_path_item(shape, do_operation)
    components: dict[str, Any] = document.setdefault("components", {})
    for section, items in protocol["components"].items():
        components.setdefault(section, {}).update(copy.deepcopy(items))
    requirement: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}] if api_key else []
    for path, item in paths.items():
        keyed = path in PROTOCOL_PATHS or path in KEYED_PATHS or path.startswith("/v1/do/")
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            if keyed and api_key:
                operation["security"] = requirement
                operation.setdefault("responses", {}).setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
            else:
                operation.pop("security", None)
                if keyed:
                    operation.get("responses", {}).pop("401", None)
    return document
