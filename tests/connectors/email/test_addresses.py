"""parse_mailbox on arbitrary text: it refuses with AddressError or returns one safe mailbox, never anything else."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from spiff_connector_email.addresses import AddressError, has_control_characters, parse_mailbox

# Characters that matter to the RFC 5322 parser, plus some non-ASCII and control characters.
_ALPHABET = string.ascii_letters[:6] + string.digits[:3] + '@.<>"(),:;\\[] -_+=é\r\n\t\x00'


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=40))
def test_any_text_is_refused_or_one_safe_mailbox(value: str) -> None:
    try:
        address = parse_mailbox(value)
    except AddressError:
        return
    assert not has_control_characters(value)
    assert address.username and address.domain and address.addr_spec.isascii()
    assert "@" not in address.display_name and not has_control_characters(address.display_name)
    assert parse_mailbox(str(address)) == address  # what goes into the header reads back the same


@given(
    st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,20}", fullmatch=True).filter(
        lambda s: ".." not in s and not s.endswith(".")
    ),
    st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,2}", fullmatch=True),
    st.text(alphabet=string.ascii_letters + " éü", max_size=20),
)
def test_plain_mailboxes_are_accepted(local: str, domain: str, name: str) -> None:
    value = f"{name} <{local}@{domain}>" if name.strip() else f"{local}@{domain}"
    address = parse_mailbox(value)

    assert address.addr_spec == f"{local}@{domain}"
    assert address.display_name == " ".join(name.split())
