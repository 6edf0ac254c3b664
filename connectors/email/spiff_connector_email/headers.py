"""Extra message headers from the ``headers`` parameter, and the subject line.

A header name is printable ASCII without ``:`` or spaces (RFC 5322 field-name). A value is one
line: CR, LF and other control characters (a tab excepted) are refused, so no value can start a
new header. The headers the connector writes itself, and those that decide how the message is
read or routed, cannot be set or replaced: :data:`STRUCTURAL` plus every ``Content-*`` and
``Resent-*`` header. Names are compared case-insensitively; messages quote the name (escaped),
never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from spiff_connector_email import errors
from spiff_connector_sdk import CommandError

STRUCTURAL = frozenset(
    {
        "bcc",
        "cc",
        "date",
        "from",
        "message-id",
        "mime-version",
        "received",
        "reply-to",
        "return-path",
        "sender",
        "subject",
        "to",
    }
)
STRUCTURAL_PREFIXES = ("content-", "resent-")
MAX_NAME_LENGTH = 76  # a name and its colon fit on one 78-character line

_NAME = re.compile(r"^[!-9;-~]+$")
_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _shown(name: str) -> str:
    """The name for a message: escaped, and shortened when long."""
    return repr(name if len(name) <= MAX_NAME_LENGTH else name[:MAX_NAME_LENGTH] + "...")


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        shown = _shown(name) if isinstance(name, str) else "a name that is not a string"
        raise CommandError(
            errors.INVALID_HEADER,
            f"headers: {shown} is not a valid header name (printable ASCII without ':' or spaces, "
            f"at most {MAX_NAME_LENGTH} characters)",
        )
    lower = name.lower()
    if lower in STRUCTURAL or lower.startswith(STRUCTURAL_PREFIXES):
        raise CommandError(
            errors.INVALID_HEADER,
            f"headers: {_shown(name)} is set by the connector and cannot be given "
            "(use the parameters for sender, recipients, reply_to and subject)",
        )
    return name


def has_line_break(value: str) -> bool:
    """Whether a header value holds CR, LF or another control character other than a tab."""
    return _VALUE_CONTROL.search(value) is not None


def extra_headers(headers: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The checked ``headers`` parameter as (name, value) pairs, in the order given.

    :raises CommandError: ``InvalidHeader`` for an invalid or reserved name, or a value that is
        not a one-line string.
    """
    if headers is None:
        return []
    if not isinstance(headers, Mapping):
        raise CommandError(errors.INVALID_HEADER, "headers must be an object of header names to string values")
    checked: list[tuple[str, str]] = []
    for name, value in headers.items():
        checked_name = _check_name(name)
        if not isinstance(value, str):
            raise CommandError(errors.INVALID_HEADER, f"headers: the value of {_shown(checked_name)} must be a string")
        if has_line_break(value):
            raise CommandError(
                errors.INVALID_HEADER,
                f"headers: the value of {_shown(checked_name)} must be one line (no CR, LF or control characters)",
            )
        checked.append((checked_name, value))
    return checked


def subject_line(subject: Any) -> str:
    """The checked subject.

    :raises CommandError: ``InvalidHeader`` when it is not a one-line string.
    """
    if not isinstance(subject, str):
        raise CommandError(errors.INVALID_HEADER, "subject must be a string")
    if has_line_break(subject):
        raise CommandError(errors.INVALID_HEADER, "subject must be one line (no CR, LF or control characters)")
    return subject
