"""Turning the upstream response into the command's ``body``.

- content type containing ``json``: the parsed JSON; ``{}`` when the body is
  empty (or only whitespace);
- otherwise an empty body: ``{"raw_response": ""}``;
- content type containing ``xml``: a dict built by ``xmltodict.parse``;
- anything else: ``{"raw_response": <text>}``.

A JSON or XML body that does not parse becomes ``{"raw_response": <text>}``
and is reported as not valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import httpx
import xmltodict  # type: ignore[import-untyped, unused-ignore]


@dataclass(frozen=True)
class ParsedBody:
    body: Any
    valid: bool = True
    kind: str = "text"


def raw(text: str) -> dict[str, Any]:
    return {"raw_response": text}


def parse_body(response: httpx.Response) -> ParsedBody:
    """Parse ``response`` per its ``Content-Type`` (see the module docstring)."""
    content_type = response.headers.get("content-type", "").lower()
    text = response.text
    if "json" in content_type:
        if not text.strip():
            return ParsedBody({}, kind="JSON")
        try:
            return ParsedBody(json.loads(text), kind="JSON")
        except ValueError:
            return ParsedBody(raw(text), valid=False, kind="JSON")
    if not text:
        return ParsedBody(raw(""))
    if "xml" in content_type:
        try:
            return ParsedBody(xmltodict.parse(text), kind="XML")
        except (ExpatError, ValueError):
            return ParsedBody(raw(text), valid=False, kind="XML")
    return ParsedBody(raw(text))


def response_headers(response: httpx.Response) -> dict[str, str]:
    """Response headers with lower-cased names; repeated headers are joined with ``", "``."""
    return dict(response.headers.items())
