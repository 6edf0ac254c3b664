"""Who sends the message to whom: the sender, checked against the allow-list, and the recipients.

Each recipient parameter (``to``, ``cc``, ``bcc``, ``reply_to``) is one address or a list of
addresses, each item exactly one mailbox. The SMTP envelope's recipients are ``to``, ``cc`` and
``bcc`` in that order, each address once (domains compared case-insensitively); ``bcc`` goes into
the envelope only, never into a header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from typing import Any

from spiff_connector_email import errors
from spiff_connector_email.addresses import AddressError, normalized, parse_mailbox
from spiff_connector_email.settings import DEFAULT_SENDER, EmailSettings
from spiff_connector_sdk import CommandError

AddressInput = str | Sequence[str] | None


@dataclass(frozen=True)
class Envelope:
    """The checked sender and recipients of one message."""

    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]

    @property
    def recipients(self) -> tuple[str, ...]:
        """The envelope recipients (``RCPT TO``): to, cc and bcc, each address once."""
        seen: dict[str, str] = {}
        for address in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(normalized(address), address.addr_spec)
        return tuple(seen.values())


def parse_addresses(value: Any, parameter: str) -> tuple[Address, ...]:
    """The addresses of one parameter: null, one address, or a list of them.

    :raises CommandError: ``InvalidAddress`` naming the parameter (and the item's position).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        labelled: list[tuple[str, Any]] = [(parameter, value)]
    elif isinstance(value, Sequence):
        labelled = [(f"{parameter}[{index}]", item) for index, item in enumerate(value)]
    else:
        raise CommandError(errors.INVALID_ADDRESS, f"{parameter} must be an address or a list of addresses")
    parsed: list[Address] = []
    for label, item in labelled:
        if not isinstance(item, str):
            raise CommandError(errors.INVALID_ADDRESS, f"{label} must be a string")
        try:
            parsed.append(parse_mailbox(item))
        except AddressError as error:
            raise CommandError(errors.INVALID_ADDRESS, f"{label} is not a valid address: {error}") from None
    return tuple(parsed)


def resolve_sender(settings: EmailSettings, sender: str | None) -> Address:
    """The ``sender`` parameter, else ``EMAIL_DEFAULT_SENDER``, once the allow-list permits it.

    :raises CommandError: ``InvalidAddress``, ``InvalidMessage`` (no sender at all) or ``SenderNotAllowed``.
    """
    if sender is None:
        if settings.default_sender is None:
            raise CommandError(
                errors.INVALID_MESSAGE, f"sender is required: {DEFAULT_SENDER} is not set in the proxy's config"
            )
        return settings.default_sender
    if not isinstance(sender, str):
        raise CommandError(errors.INVALID_ADDRESS, "sender must be one address")
    (address,) = parse_addresses(sender, "sender")
    if not settings.senders.allows(address):
        raise CommandError(
            errors.SENDER_NOT_ALLOWED, f"sender {address.addr_spec} is not allowed by {settings.senders.source}"
        )
    return address


def build_envelope(
    settings: EmailSettings,
    *,
    sender: str | None,
    to: AddressInput,
    cc: AddressInput,
    bcc: AddressInput,
    reply_to: AddressInput,
) -> Envelope:
    """Check the sender and the recipients.

    :raises CommandError: see :func:`parse_addresses` and :func:`resolve_sender`; ``InvalidMessage``
        when there is no recipient at all.
    """
    envelope = Envelope(
        sender=resolve_sender(settings, sender),
        to=parse_addresses(to, "to"),
        cc=parse_addresses(cc, "cc"),
        bcc=parse_addresses(bcc, "bcc"),
        reply_to=parse_addresses(reply_to, "reply_to"),
    )
    if not envelope.recipients:
        raise CommandError(errors.INVALID_MESSAGE, "no recipient: give at least one address in to, cc or bcc")
    return envelope
