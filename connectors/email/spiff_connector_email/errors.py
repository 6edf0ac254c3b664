"""Stable error codes of the email connector (they become BPMN error codes in spiff-arena).

Every failure is raised as :class:`~spiff_connector_sdk.CommandError` with one of these codes.
Messages name configuration keys, parameters, addresses and the SMTP server's reply; they never
contain the SMTP password, a message body or attachment contents.
"""

from __future__ import annotations

from typing import Final

# The proxy's configuration.
EMAIL_NOT_CONFIGURED: Final = "EmailNotConfigured"
"""``EMAIL_SMTP_HOST`` is not set, or neither ``EMAIL_DEFAULT_SENDER`` nor ``EMAIL_ALLOWED_SENDERS`` is."""

INVALID_EMAIL_CONFIG: Final = "InvalidEmailConfig"
"""A configuration value is invalid (the message names the key, never the value)."""

# The parameters; nothing was sent.
SENDER_NOT_ALLOWED: Final = "SenderNotAllowed"
"""The sender is not in ``EMAIL_ALLOWED_SENDERS`` (or is not ``EMAIL_DEFAULT_SENDER`` when that list is unset)."""

INVALID_ADDRESS: Final = "InvalidAddress"
"""An address does not parse, is not exactly one mailbox, has CR/LF, a quoted or non-ASCII address part,
or a display name that looks like an address."""

INVALID_HEADER: Final = "InvalidHeader"
"""A header (``headers`` or ``subject``) has CR/LF or an invalid name, or would replace a structural header."""

INVALID_ATTACHMENT: Final = "InvalidAttachment"
"""An attachment is not ``{filename, content, content_type?}``, its content is not base64 or a base64
``data:`` URI, its content type is invalid, or there are more than ``EMAIL_MAX_ATTACHMENTS``."""

INVALID_MESSAGE: Final = "InvalidMessage"
"""No recipient at all, neither ``text`` nor ``html``, or no sender while ``EMAIL_DEFAULT_SENDER`` is unset."""

MESSAGE_TOO_LARGE: Final = "MessageTooLarge"
"""The encoded message is larger than ``EMAIL_MAX_MESSAGE_BYTES``, or the server refused its size (552)."""

# The SMTP conversation.
SMTP_CONNECT_ERROR: Final = "SMTPConnectError"
"""No connection: DNS failure, connection refused or reset, no TCP connection (for ``implicit``: no TLS
handshake) within the timeout, or a greeting that refuses service."""

SMTP_TIMEOUT: Final = "SMTPTimeout"
"""Connected, but the server did not answer (greeting, a command, the message) within the timeout."""

TLS_ERROR: Final = "TLSError"
"""The TLS handshake failed: certificate not trusted or for another host, a server not speaking TLS."""

STARTTLS_NOT_OFFERED: Final = "StartTLSNotOffered"
"""TLS is required (``starttls``, or ``starttls-optional`` with credentials) but the server does not offer STARTTLS."""

SMTP_AUTHENTICATION_ERROR: Final = "SMTPAuthenticationError"
"""The server refused the login, or does not offer SMTP AUTH although credentials are configured."""

SENDER_REFUSED: Final = "SenderRefused"
"""The server refused the sender (``MAIL FROM``)."""

RECIPIENTS_REFUSED: Final = "RecipientsRefused"
"""The server refused every recipient; the error's body lists each with the server's reply."""

SMTP_DATA_ERROR: Final = "SMTPDataError"
"""The server refused the message itself (``DATA``)."""

SMTP_ERROR: Final = "SMTPError"
"""Any other SMTP failure: the connection dropped, an unexpected reply, an unsupported command."""
