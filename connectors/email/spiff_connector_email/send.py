"""Delivering one message over SMTP with :mod:`aiosmtplib`, and mapping its failures to error codes.

Each call opens its own connection and closes it when done (SMTP servers drop idle connections,
and a call sends one message): connect (TLS from the first byte for ``implicit``), EHLO,
STARTTLS for the ``starttls`` modes, login when credentials are configured, then the
transaction (``MAIL FROM``, one ``RCPT TO`` per recipient, ``DATA``) and ``QUIT``.

Credentials never travel in the clear unless ``EMAIL_SMTP_TLS`` is ``none``: in
``starttls-optional`` mode a server without STARTTLS gets no login (the call fails with
``StartTLSNotOffered``). ``EMAIL_SMTP_TIMEOUT`` bounds every wait: the connection, each reply, the
TLS handshake. Once the server has accepted the message, nothing fails the call any more (a
failed ``QUIT`` included): a retry would send the message twice.

Messages name the server (``host:port``), the phase and the server's reply, with the password
removed should a server echo it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import socket
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal, TypeVar

import aiosmtplib

from spiff_connector_email import errors
from spiff_connector_email.message import OutgoingMessage
from spiff_connector_email.settings import PASSWORD, TLS, USERNAME, EmailSettings, TlsMode
from spiff_connector_email.tls import client_context
from spiff_connector_sdk import CommandError
from spiff_connector_sdk.failures import exception_chain

Phase = Literal["connect", "starttls", "login", "send"]
T = TypeVar("T")

SIZE_EXCEEDED = 552
"""The reply to a message too large for the server (RFC 1870, RFC 5321 "exceeded storage allocation")."""
MAX_REPLY_LENGTH = 300
_WHITESPACE = re.compile(r"\s+")
_DOING: dict[Phase, str] = {
    "connect": "waiting for the greeting",
    "starttls": "starting TLS",
    "login": "logging in",
    "send": "sending the message",
}


@dataclass(frozen=True)
class Delivery:
    """The server's verdict: the recipients it accepted, and those it refused with its reply."""

    accepted: tuple[str, ...]
    refused: dict[str, str]


@functools.cache
def _local_hostname() -> str:
    """This host's name for EHLO, looked up once (the lookup may wait on DNS)."""
    return socket.getfqdn()


def _clean(text: str, settings: EmailSettings) -> str:
    """One line, without the password, at most :data:`MAX_REPLY_LENGTH` characters."""
    if settings.password:
        text = text.replace(settings.password, "***")
    text = _WHITESPACE.sub(" ", text).strip()
    return text if len(text) <= MAX_REPLY_LENGTH else text[: MAX_REPLY_LENGTH - 3] + "..."


def _reply(response: aiosmtplib.SMTPResponse | aiosmtplib.SMTPResponseException, settings: EmailSettings) -> str:
    """The server's reply as ``<code> <text>``."""
    return _clean(f"{response.code} {response.message}", settings)


def _tls_reason(exc: BaseException) -> str | None:
    """Why the TLS handshake failed, when it did."""
    for item in exception_chain(exc):
        if isinstance(item, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {item.verify_message}"
        if isinstance(item, ssl.SSLError):
            return item.reason or str(item)
    return None


def _waited_for_reply(exc: aiosmtplib.SMTPTimeoutError) -> bool:
    """Whether a timeout came while waiting for the server to speak, not for the TCP connection."""
    return any(isinstance(item, aiosmtplib.SMTPTimeoutError) for item in exception_chain(exc)[1:])


def _os_reason(exc: BaseException) -> str:
    """The operating system's reason (``Connection refused``, ``Name or service not known``), else the text
    of the innermost exception (``Connection lost``)."""
    chain = exception_chain(exc)
    for item in chain:
        if isinstance(item, socket.gaierror) and item.strerror:
            return item.strerror
        if isinstance(item, OSError) and not isinstance(item, aiosmtplib.SMTPException):
            if item.errno is not None and item.errno > 0:
                return os.strerror(item.errno)
            return str(item) or type(item).__name__
    return str(chain[-1]) or type(chain[-1]).__name__


def _timeout_failure(exc: aiosmtplib.SMTPTimeoutError, phase: Phase, settings: EmailSettings) -> CommandError:
    if phase == "connect" and not _waited_for_reply(exc):
        return CommandError(
            errors.SMTP_CONNECT_ERROR,
            f"cannot connect to {settings.server}: no connection within {settings.timeout:g} s",
        )
    return CommandError(
        errors.SMTP_TIMEOUT,
        f"{settings.server} did not answer within {settings.timeout:g} s ({_DOING[phase]})",
    )


def _refusal_failure(exc: aiosmtplib.SMTPException, settings: EmailSettings) -> CommandError | None:
    """The codes for a server that refused the login, the sender, every recipient or the message."""
    server = settings.server
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return CommandError(errors.SMTP_AUTHENTICATION_ERROR, f"{server} refused the login: {_reply(exc, settings)}")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        code = errors.MESSAGE_TOO_LARGE if exc.code == SIZE_EXCEEDED else errors.SENDER_REFUSED
        return CommandError(code, f"{server} refused the sender {exc.sender}: {_reply(exc, settings)}")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = {item.recipient: _reply(item, settings) for item in exc.recipients}
        listed = "; ".join(f"{recipient}: {reply}" for recipient, reply in refused.items())
        return CommandError(
            errors.RECIPIENTS_REFUSED, f"{server} refused every recipient ({listed})", body={"refused": refused}
        )
    if isinstance(exc, aiosmtplib.SMTPDataError):
        code = errors.MESSAGE_TOO_LARGE if exc.code == SIZE_EXCEEDED else errors.SMTP_DATA_ERROR
        return CommandError(code, f"{server} refused the message: {_reply(exc, settings)}")
    return None


def failure(exc: Exception, phase: Phase, settings: EmailSettings) -> CommandError:
    """The :class:`CommandError` for an exception raised in ``phase`` of the SMTP conversation."""
    server = settings.server
    tls_reason = _tls_reason(exc)
    if tls_reason is not None:
        return CommandError(errors.TLS_ERROR, f"TLS with {server} failed: {_clean(tls_reason, settings)}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return _timeout_failure(exc, phase, settings)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return CommandError(errors.SMTP_CONNECT_ERROR, f"{server} refused service: {_reply(exc, settings)}")
    if isinstance(exc, aiosmtplib.SMTPConnectError) or (phase == "connect" and isinstance(exc, OSError)):
        return CommandError(
            errors.SMTP_CONNECT_ERROR, f"cannot connect to {server}: {_clean(_os_reason(exc), settings)}"
        )
    refusal = _refusal_failure(exc, settings) if isinstance(exc, aiosmtplib.SMTPException) else None
    if refusal is not None:
        return refusal
    detail = _reply(exc, settings) if isinstance(exc, aiosmtplib.SMTPResponseException) else _clean(str(exc), settings)
    if phase == "login" and not isinstance(exc, OSError):  # no common mechanism, an odd reply; not a lost connection
        return CommandError(errors.SMTP_AUTHENTICATION_ERROR, f"cannot log in to {server}: {detail}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return CommandError(errors.SMTP_ERROR, f"{server} answered {detail} ({_DOING[phase]})")
    return CommandError(
        errors.SMTP_ERROR, f"SMTP with {server} failed ({_DOING[phase]}): {_clean(_os_reason(exc), settings)}"
    )


async def _step(phase: Phase, settings: EmailSettings, action: Awaitable[T]) -> T:
    """Await one phase, turning aiosmtplib's and the socket's exceptions into a :class:`CommandError`."""
    try:
        return await action
    except (aiosmtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
        raise failure(exc, phase, settings) from exc


async def _ehlo(client: aiosmtplib.SMTP) -> None:
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()


async def _secure(client: aiosmtplib.SMTP, settings: EmailSettings) -> None:
    """STARTTLS in the ``starttls`` modes; refuse to go on where TLS is required but not offered."""
    if settings.tls not in (TlsMode.STARTTLS, TlsMode.STARTTLS_OPTIONAL):
        return
    await _ehlo(client)
    if not client.supports_extension("starttls"):
        if settings.tls is TlsMode.STARTTLS:
            raise CommandError(
                errors.STARTTLS_NOT_OFFERED,
                f"{settings.server} does not offer STARTTLS, which {TLS}=starttls requires "
                "(implicit is for servers that speak TLS from the start, usually on port 465)",
            )
        if settings.credentials is not None:
            raise CommandError(
                errors.STARTTLS_NOT_OFFERED,
                f"{settings.server} does not offer STARTTLS: the login is never sent unencrypted "
                f"in {TLS}=starttls-optional mode",
            )
        return
    await client.starttls()


async def _login(client: aiosmtplib.SMTP, settings: EmailSettings) -> None:
    credentials = settings.credentials
    if credentials is None:
        return
    await _ehlo(client)
    if not client.supports_extension("auth"):
        raise CommandError(
            errors.SMTP_AUTHENTICATION_ERROR,
            f"{settings.server} does not offer SMTP AUTH, but {USERNAME} and {PASSWORD} are set",
        )
    await client.login(*credentials)


async def _client(settings: EmailSettings) -> aiosmtplib.SMTP:
    tls_context = None if settings.tls is TlsMode.NONE else await client_context(settings.ca)
    return aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        local_hostname=await asyncio.to_thread(_local_hostname),
        use_tls=settings.tls is TlsMode.IMPLICIT,
        start_tls=False,  # upgraded explicitly (see _secure): a missing STARTTLS must not go unnoticed
        tls_context=tls_context,
        timeout=settings.timeout,
    )


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say goodbye; the message was accepted, so a failure here changes nothing."""
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()


async def deliver(settings: EmailSettings, message: OutgoingMessage) -> Delivery:
    """Send ``message`` on a connection of its own.

    :raises CommandError: with the code for what failed (see :mod:`spiff_connector_email.errors`).
    """
    client = await _client(settings)
    try:
        await _step("connect", settings, client.connect())
        await _step("starttls", settings, _secure(client, settings))
        await _step("login", settings, _login(client, settings))
        refused, _ = await _step(
            "send", settings, client.sendmail(message.sender, list(message.recipients), message.data)
        )
        await _quit(client)
    finally:
        client.close()
    replies = {recipient: _reply(response, settings) for recipient, response in refused.items()}
    accepted = tuple(recipient for recipient in message.recipients if recipient not in replies)
    return Delivery(accepted=accepted, refused=replies)
