"""URL validation and secret-free rendering of URLs and messages."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

ALLOWED_SCHEMES = frozenset({"http", "https"})
_REDACTED = "***"
_MAX_DETAIL = 200


class InvalidUrlError(ValueError):
    """The URL is unusable; the message never repeats the URL itself."""


def parse_url(url: str) -> httpx.URL:
    """Parse ``url`` and insist on an absolute ``http``/``https`` URL with a host."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidUrlError("url is not a valid URL") from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise InvalidUrlError("url must be an absolute http:// or https:// URL")
    if not parsed.host:
        raise InvalidUrlError("url has no host")
    return parsed


def display_url(url: httpx.URL) -> str:
    """``scheme://host[:port]/path``: without userinfo, query string and fragment (they can hold secrets)."""
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` and bound the result's length."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "..."
    return text
