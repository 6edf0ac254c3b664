"""The upstream's answer, read whole, and turning it into the command's ``body``.

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

Text is the body decoded with the ``charset`` of its ``Content-Type``, UTF-8 when there is none
(or it names no known codec), undecodable bytes replaced; header names are lower-cased and a
repeated header's values joined with ``", "`` (as httpx, which the connector used before, did).
"""

from __future__ import annotations

import codecs
import email.message
import http
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import xmltodict  # type: ignore[import-untyped, unused-ignore]

DEFAULT_ENCODING = "utf-8"


def decode_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header lines as names (lower-cased) to values; a repeated name's values are joined with ``", "``.

    All lines are read as UTF-8 (ASCII included), or all as ISO-8859-1 when one is not UTF-8."""
    lines = tuple(raw)
    try:
        return _joined((name.decode("utf-8").lower(), value.decode("utf-8")) for name, value in lines)
    except UnicodeDecodeError:
        return _joined((name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in lines)


def _joined(lines: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in lines:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def reason_phrase(status: int, reason: str | None) -> str:
    """The status line's reason (its ASCII characters), or the standard one when it has none."""
    if reason:
        return reason.encode("ascii", "ignore").decode("ascii")
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


@lru_cache(maxsize=256)
def charset_of(content_type: str) -> str:
    """The codec to read a body of ``content_type`` with."""
    if "charset" not in content_type.lower():
        return DEFAULT_ENCODING
    message = email.message.Message()
    message["content-type"] = content_type
    charset = message.get_content_charset(failobj=None)
    if charset is None:
        return DEFAULT_ENCODING
    try:
        codecs.lookup(charset)
    except LookupError:
        return DEFAULT_ENCODING
    return charset


@dataclass(frozen=True)
class Response:
    """A complete answer: ``headers`` as :func:`decode_headers` gives them, ``content`` decoded
    per its ``Content-Encoding``."""

    status: int
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def text(self) -> str:
        if not self.content:
            return ""
        encoding = charset_of(self.header("content-type") or "")
        return self.content.decode(encoding, "replace")

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower-case), repeats joined."""
        return self.headers.get(name)


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


def parse_body(response: Response) -> ParsedBody:
    """Parse ``response`` per its ``Content-Type`` (see the module docstring)."""
    content_type = (response.header("content-type") or "").lower()
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


def response_headers(response: Response) -> dict[str, str]:
    """Response headers with lower-cased names; repeated headers are joined with ``", "``."""
    return dict(response.headers)
