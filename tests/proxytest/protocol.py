"""Validating responses against the spiff-arena protocol document (docs/protocol/openapi.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

PROTOCOL_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol" / "openapi.json"


@cache
def protocol() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PROTOCOL_PATH.read_text())
    return loaded


def validator(schema_name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<schema_name>``, resolving refs inside the document."""
    document = protocol()
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    return Draft202012Validator(schema)


def validate(schema_name: str, instance: Any) -> None:
    validator(schema_name).validate(instance)


def validate_do_response(status: int, body: Any) -> None:
    """Check a /v1/do answer against the response the protocol document gives for that status."""
    if status in (200, 202):
        validate("ConnectorProxyResponseV2", body)
    elif status == 401:
        assert isinstance(body, dict) and isinstance(body.get("error"), str)
    else:
        validate("ConnectorProxyProtocolError", body)
