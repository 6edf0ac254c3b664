"""Turning the upstream response into the command's ``body``.

- content type containing ``json``: the parsed JSON; ``{}`` when the body is
  empty (or only whitespace);
- otherwise an empty body: ``{"raw_response": ""}``;
- content type containing ``xml``: a dict built by ``xmltodict.parse``;
- anything else: ``{"raw_response": <text>}``.

A JSON or XML body that does not parse becomes ``{"raw_response": <text>}``
with ``error_code`` the parser's exception class name (``JSONDecodeError``,
``ExpatError``), as the community connector reports it.

The community connector parses only ``application/json``, ``application/xml``
and ``text/xml`` (``+json``/``+xml`` types stay raw text there) and fails an
empty JSON/XML body; see the README's differences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import xmltodict  # type: ignore[import-untyped, unused-ignore]


@dataclass(frozen=True)
class ParsedBody:
    body: Any
    kind: str = "text"
    error_code: str | None = None
    """The parser's exception class name when the body does not parse."""
    error_detail: str = ""

    @property
    def valid(self) -> bool:
        return self.error_code is None


def raw(text: str) -> dict[str, Any]:
    return {"raw_response": text}


def _unparsed(text: str, kind: str, exc: Exception) -> ParsedBody:
    return ParsedBody(raw(text), kind=kind, error_code=type(exc).__name__, error_detail=str(exc))


def parse_body(response: httpx.Response) -> ParsedBody:
    """Parse ``response`` per its ``Content-Type`` (see the module docstring)."""
    content_type = response.headers.get("content-type", "").lower()
    text = response.text
    if "json" in content_type:
        if not text.strip():
            return ParsedBody({}, kind="JSON")
        try:
            return ParsedBody(json.loads(text), kind="JSON")
        except Exception as exc:  # any failure, reported by its class name (as the community connector does)
            return _unparsed(text, "JSON", exc)
    if not text:
        return ParsedBody(raw(""))
    if "xml" in content_type:
        try:
            return ParsedBody(xmltodict.parse(text), kind="XML")
        except Exception as exc:  # any failure, reported by its class name (as the community connector does)
            return _unparsed(text, "XML", exc)
    return ParsedBody(raw(text))


def response_headers(response: httpx.Response) -> dict[str, str]:
    """Response headers with lower-cased names; repeated headers are joined with ``", "``."""
    return dict(response.headers.items())
