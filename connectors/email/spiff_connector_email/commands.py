"""The ``SendEmail`` command: a fully annotated signature (the proxy builds the catalog from it).

Checking the parameters and encoding the message (base64 attachments of up to
``EMAIL_MAX_MESSAGE_BYTES``) is CPU work, done in a worker thread so the event loop stays free;
only the SMTP conversation runs on the loop.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from spiff_connector_email import errors
from spiff_connector_email.attachments import decode_attachments
from spiff_connector_email.envelope import build_envelope
from spiff_connector_email.headers import extra_headers, subject_line
from spiff_connector_email.message import Content, OutgoingMessage, build_message
from spiff_connector_email.send import deliver
from spiff_connector_email.settings import EmailSettings, load_settings
from spiff_connector_sdk import CommandError, Context, Param, Result

To = Annotated[
    list[str] | str,
    Param(
        "Recipients: one address or a list of them, each 'name@example.com' or 'Name <name@example.com>'; "
        "may be an empty list when cc or bcc has a recipient.",
        examples=(["ops@example.com", "Jane Doe <jane@example.com>"],),
    ),
]
Cc = Annotated[list[str] | str | None, Param("Carbon-copy recipients, shown to every recipient; like to.")]
Bcc = Annotated[
    list[str] | str | None,
    Param("Blind-copy recipients: the message is delivered to them, but no header names them; like to."),
]
Subject = Annotated[str, Param("Subject line: one line; non-ASCII text is encoded.", examples=("Order 42 shipped",))]
Text = Annotated[str | None, Param("Plain-text body. With html too, the message offers both (multipart/alternative).")]
Html = Annotated[str | None, Param("HTML body. With text too, mail clients show this one and fall back to the text.")]
Sender = Annotated[
    str | None,
    Param(
        "From address, 'name@example.com' or 'Name <name@example.com>'; it must be allowed by EMAIL_ALLOWED_SENDERS. "
        "Default: EMAIL_DEFAULT_SENDER."
    ),
]
ReplyTo = Annotated[list[str] | str | None, Param("Where replies go (Reply-To): one address or a list of them.")]
Headers = Annotated[
    dict[str, str] | None,
    Param(
        "Extra headers, name to value, e.g. {'X-Ticket': '42'}: one line each; the connector's own headers "
        "(From, To, Cc, Bcc, Subject, Reply-To, Date, Message-ID, MIME-Version, Content-*, ...) cannot be set.",
        examples=({"X-Ticket": "42"},),
    ),
]
_ATTACHMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "filename": {"type": "string", "description": "File name shown to the recipient."},
        "content": {"type": "string", "description": "Base64 data, or a data:<type>;base64,<data> URI."},
        "content_type": {"type": "string", "description": "Media type, e.g. application/pdf (default: guessed)."},
    },
    "required": ["filename", "content"],
    "additionalProperties": False,
}
Attachments = Annotated[
    list[dict[str, str]] | None,
    Param(
        "Files to attach: a list of {filename, content, content_type?}, content in base64 or a base64 data: URI; "
        "at most EMAIL_MAX_ATTACHMENTS of them.",
        examples=([{"filename": "hello.txt", "content": "SGVsbG8h", "content_type": "text/plain"}],),
        schema={"anyOf": [{"type": "array", "items": _ATTACHMENT_SCHEMA}, {"type": "null"}]},
    ),
]


def _body(value: Any, parameter: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise CommandError(errors.INVALID_MESSAGE, f"{parameter} must be a string")
    return value


def _compose(settings: EmailSettings, params: dict[str, Any]) -> OutgoingMessage:
    """Check every parameter and encode the message (nothing is sent yet)."""
    envelope = build_envelope(
        settings,
        sender=params["sender"],
        to=params["to"],
        cc=params["cc"],
        bcc=params["bcc"],
        reply_to=params["reply_to"],
    )
    content = Content(
        subject=subject_line(params["subject"]),
        text=_body(params["text"], "text"),
        html=_body(params["html"], "html"),
        headers=extra_headers(params["headers"]),
        attachments=decode_attachments(
            params["attachments"], max_attachments=settings.max_attachments, max_bytes=settings.max_message_bytes
        ),
    )
    return build_message(envelope, content, max_bytes=settings.max_message_bytes)


async def send_email(
    ctx: Context,
    *,
    to: To,
    cc: Cc = None,
    bcc: Bcc = None,
    subject: Subject = "",
    text: Text = None,
    html: Html = None,
    sender: Sender = None,
    reply_to: ReplyTo = None,
    headers: Headers = None,
    attachments: Attachments = None,
) -> Result:
    """Send an email over SMTP (text and/or HTML, attachments); returns its Message-ID, who got it, who refused."""
    settings = load_settings(ctx.config)
    params = {
        "to": to,
        "cc": cc,
        "bcc": bcc,
        "subject": subject,
        "text": text,
        "html": html,
        "sender": sender,
        "reply_to": reply_to,
        "headers": headers,
        "attachments": attachments,
    }
    message = await asyncio.to_thread(_compose, settings, params)
    delivery = await deliver(settings, message)
    ctx.log(
        f"sent message {message.message_id} via {settings.server} to {len(message.recipients)} "
        f"recipient(s) ({len(delivery.refused)} refused)"
    )
    return Result(
        body={"message_id": message.message_id, "accepted": list(delivery.accepted), "refused": delivery.refused}
    )


COMMANDS = {"SendEmail": send_email}
