"""Building the MIME message and its bytes on the wire.

The message is an :class:`email.message.EmailMessage`: ``text`` alone is ``text/plain``, ``html``
alone ``text/html``, both a ``multipart/alternative`` (plain text first, as RFC 2046 orders
them); attachments wrap that in ``multipart/mixed``. Everything is encoded as 7-bit ASCII
(quoted-printable or base64 bodies, RFC 2047/2231 encoded non-ASCII headers and file names), so
any SMTP server takes it without 8BITMIME or SMTPUTF8. ``Bcc`` is never written: those recipients
are in the SMTP envelope only. The ``Message-ID`` is made with :func:`email.utils.make_msgid` on
the sender's domain.
"""

from __future__ import annotations

import datetime
import email.policy
import email.utils
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage

from spiff_connector_email import errors
from spiff_connector_email.attachments import Attachment
from spiff_connector_email.envelope import Envelope
from spiff_connector_email.settings import MAX_MESSAGE_BYTES
from spiff_connector_sdk import CommandError

POLICY = email.policy.SMTP.clone(cte_type="7bit")
"""CRLF line ends, 78-character folding, and no 8-bit content."""


@dataclass(frozen=True)
class Content:
    """What the message says: the checked subject, bodies, extra headers and attachments."""

    subject: str
    text: str | None
    html: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready for SMTP: the envelope's addresses and the encoded bytes."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes = field(repr=False)


def _set_addresses(message: EmailMessage, name: str, addresses: tuple[Address, ...]) -> None:
    if addresses:
        message[name] = addresses


def _headers(message: EmailMessage, envelope: Envelope, content: Content, message_id: str) -> None:
    message["From"] = envelope.sender
    _set_addresses(message, "To", envelope.to)
    _set_addresses(message, "Cc", envelope.cc)
    _set_addresses(message, "Reply-To", envelope.reply_to)
    message["Subject"] = content.subject
    message["Date"] = email.utils.format_datetime(datetime.datetime.now(datetime.UTC))
    message["Message-ID"] = message_id
    for name, value in content.headers:
        message[name] = value


def _body(message: EmailMessage, content: Content) -> None:
    if content.text is not None:
        message.set_content(content.text)
        if content.html is not None:
            message.add_alternative(content.html, subtype="html")
    elif content.html is not None:
        message.set_content(content.html, subtype="html")
    for attachment in content.attachments:
        kind = attachment.content_type
        message.add_attachment(
            attachment.data,
            maintype=kind.maintype,
            subtype=kind.subtype,
            filename=attachment.filename,
            params={"charset": kind.charset} if kind.charset else None,
        )
    for part in message.walk():
        if part is not message:  # the standard library repeats MIME-Version in every part it adds
            del part["MIME-Version"]


def _encoded(message_id: str, envelope: Envelope, content: Content) -> bytes:
    message = EmailMessage(policy=POLICY)
    try:
        _headers(message, envelope, content, message_id)
        _body(message, content)
        return message.as_bytes(policy=POLICY)
    except UnicodeEncodeError:
        raise CommandError(
            errors.INVALID_MESSAGE,
            "the subject, a body or a header holds text that cannot be encoded as UTF-8 (a lone surrogate)",
        ) from None


def build_message(envelope: Envelope, content: Content, *, max_bytes: int) -> OutgoingMessage:
    """Build and encode the message.

    :raises CommandError: ``InvalidMessage`` when there is no body or text cannot be encoded,
        ``MessageTooLarge`` when the encoded message exceeds ``max_bytes``.
    """
    if content.text is None and content.html is None:
        raise CommandError(errors.INVALID_MESSAGE, "no body: give text, html or both")
    message_id = email.utils.make_msgid(domain=envelope.sender.domain)
    data = _encoded(message_id, envelope, content)
    if len(data) > max_bytes:
        raise CommandError(
            errors.MESSAGE_TOO_LARGE,
            f"the message takes {len(data)} bytes encoded, more than {MAX_MESSAGE_BYTES} allows ({max_bytes})",
        )
    return OutgoingMessage(
        message_id=message_id, sender=envelope.sender.addr_spec, recipients=envelope.recipients, data=data
    )
