"""Email addresses: parsing one mailbox strictly, and normalising it for comparisons.

An address is parsed with the standard library's RFC 5322 header parser
(:mod:`email.headerregistry`), which reports what it had to repair as defects; any defect refuses
the address. On top of that, an accepted address is exactly one mailbox (``a@example.com`` or
``Name <a@example.com>``, no groups, no lists), its local part is an ASCII dot-atom (no quoted
local parts), its domain a host name of letters, digits and hyphens (no address literals, no
internationalised names: they would need SMTPUTF8), and its display name has no ``@`` (a display
name that looks like another address is a spoofing trick). Control characters (CR/LF first of all)
are refused before parsing, so no input can add a header.

Errors say what is wrong without quoting the input: callers add where it came from.
"""

from __future__ import annotations

import email.policy
import re
from email.headerregistry import Address

MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
MAX_DOMAIN_LENGTH = 253

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class AddressError(ValueError):
    """An address that cannot be used; the text says why, without quoting the address."""


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds CR, LF or another control character."""
    return _CONTROL.search(value) is not None


def is_valid_domain(domain: str) -> bool:
    """Whether ``domain`` is an ASCII host name: dot-separated labels of letters, digits and hyphens."""
    if not domain.isascii() or len(domain) > MAX_DOMAIN_LENGTH:
        return False
    return all(_LABEL.match(label) for label in domain.split("."))


def _check_parts(address: Address) -> None:
    if len(address.username) > MAX_LOCAL_PART_LENGTH or len(address.addr_spec) > MAX_ADDRESS_LENGTH:
        raise AddressError("it is too long")
    if not _LOCAL_PART.match(address.username):
        raise AddressError("the part before @ must be plain ASCII (letters, digits, . and !#$%&'*+/=?^_`{|}~-)")
    if not is_valid_domain(address.domain):
        raise AddressError("the domain must be a host name of ASCII letters, digits, hyphens and dots")
    if "@" in address.display_name:
        raise AddressError("the display name must not contain @ (it would look like another address)")


def parse_mailbox(value: str) -> Address:
    """The one mailbox ``value`` holds, e.g. ``a@example.com`` or ``Ops Team <ops@example.com>``.

    :raises AddressError: it is not exactly one valid mailbox.
    """
    if has_control_characters(value):
        raise AddressError("it contains a line break or another control character")
    if not value.strip():
        raise AddressError("it is empty")
    try:
        header = email.policy.default.header_factory("to", value)
    except Exception:  # the parser raises on some malformed input (IndexError for "name@" in 3.11)
        raise AddressError("it does not parse as an email address") from None
    if header.defects:
        raise AddressError("it does not parse as an email address")
    if len(header.groups) != 1 or header.groups[0].display_name is not None or len(header.addresses) != 1:
        raise AddressError("it must be exactly one address (pass several as a list)")
    parsed = header.addresses[0]
    _check_parts(parsed)
    return Address(display_name=parsed.display_name, username=parsed.username, domain=parsed.domain)


def normalized(address: Address) -> str:
    """``local@domain`` with the domain lower-cased: local parts are case-sensitive, domains are not."""
    return f"{address.username}@{address.domain.lower()}"
