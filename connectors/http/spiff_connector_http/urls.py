"""URL validation (with ``requests``' rules and error codes) and secret-free rendering of URLs and messages.

A URL up to :data:`CACHED_URL_LENGTH` characters is parsed (and rendered) once: the results of the
last :data:`CACHED_URLS` are kept, as a process calls the same few APIs again and again."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import httpx
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url as urllib3_parse_url

from spiff_connector_http import errors

ALLOWED_SCHEMES = frozenset({"http", "https"})
_REDACTED = "***"
_MAX_DETAIL = 200
CACHED_URLS = 1024
CACHED_URL_LENGTH = 2048


class InvalidUrlError(ValueError):
    """The URL is unusable; ``code`` is the community connector's, the message never repeats the URL."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_url(url: Any) -> httpx.URL:
    """Parse ``url`` as ``requests`` does and insist on an ``http``/``https`` URL with a host.

    The checks and their order are ``requests``' (``PreparedRequest.prepare_url``, then the
    adapter lookup), on the same parser (urllib3's), so a URL fails with the code the community
    connector reports: leading whitespace is dropped; a URL with a ``:`` that does not start with
    ``http`` is :data:`~errors.INVALID_SCHEMA`; one that does not parse, or has no host, is
    :data:`~errors.INVALID_URL`; one without a scheme :data:`~errors.MISSING_SCHEMA`; a host
    name with an empty label (``a..b``) :data:`~errors.LOCATION_PARSE_ERROR`.
    """
    text = url.decode("utf-8", "replace") if isinstance(url, bytes) else str(url)
    text = text.lstrip()
    return _parse_cached(text) if len(text) <= CACHED_URL_LENGTH else _parse(text)


def _parse(text: str) -> httpx.URL:
    if ":" in text and not text.lower().startswith("http"):
        raise InvalidUrlError(errors.INVALID_SCHEMA, "url must be an http:// or https:// URL")
    try:
        parts = urllib3_parse_url(text)
    except LocationParseError as exc:
        raise InvalidUrlError(errors.INVALID_URL, "url is not a valid URL") from exc
    if not parts.scheme:
        raise InvalidUrlError(errors.MISSING_SCHEMA, "url has no scheme: it must start with http:// or https://")
    if not parts.host:
        raise InvalidUrlError(errors.INVALID_URL, "url has no host")
    if parts.host.startswith(("*", ".")):
        raise InvalidUrlError(errors.INVALID_URL, "url has an invalid host name")
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise InvalidUrlError(errors.INVALID_SCHEMA, "url must be an http:// or https:// URL")
    try:
        parts.host.strip("[]").encode("idna")  # urllib3 checks this when it connects
    except UnicodeError as exc:
        raise InvalidUrlError(errors.LOCATION_PARSE_ERROR, "url has an empty or too long host name label") from exc
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidUrlError(errors.INVALID_URL, "url is not a valid URL") from exc
    if not parsed.host:
        raise InvalidUrlError(errors.INVALID_URL, "url has no host")
    return parsed


_parse_cached = functools.lru_cache(maxsize=CACHED_URLS)(_parse)


def display_url(url: httpx.URL) -> str:
    """``scheme://host[:port]/path``: without userinfo, query string and fragment (they can hold secrets)."""
    return _display_cached(url) if len(url.raw_path) <= CACHED_URL_LENGTH else _display(url)


def _display(url: httpx.URL) -> str:
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


_display_cached = functools.lru_cache(maxsize=CACHED_URLS)(_display)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` and bound the result's length."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "..."
    return text
