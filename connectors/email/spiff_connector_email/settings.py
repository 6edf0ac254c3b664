"""The connector's settings, parsed from the proxy's flat ``config`` mapping on every call.

Values usually arrive as strings (Kubernetes Secrets, ``CONNECTOR_PROXY_CONFIG__<KEY>``
variables); numbers from a JSON config file are taken too. An empty value counts as unset.
Surrounding whitespace is dropped, except from the password, which loses only a trailing line
break. Every error names the key and never its value.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from typing import Any

from spiff_connector_email import errors
from spiff_connector_email.addresses import AddressError, is_valid_domain, normalized, parse_mailbox
from spiff_connector_sdk import CommandError

HOST = "EMAIL_SMTP_HOST"
PORT = "EMAIL_SMTP_PORT"
TLS = "EMAIL_SMTP_TLS"
USERNAME = "EMAIL_SMTP_USERNAME"
PASSWORD = "EMAIL_SMTP_PASSWORD"  # noqa: S105 - the name of the config key, not a password
CA_FILE = "EMAIL_SMTP_CA_FILE"
TIMEOUT = "EMAIL_SMTP_TIMEOUT"
ALLOWED_SENDERS = "EMAIL_ALLOWED_SENDERS"
DEFAULT_SENDER = "EMAIL_DEFAULT_SENDER"
MAX_MESSAGE_BYTES = "EMAIL_MAX_MESSAGE_BYTES"
MAX_ATTACHMENTS = "EMAIL_MAX_ATTACHMENTS"

KEYS = (
    HOST,
    PORT,
    TLS,
    USERNAME,
    PASSWORD,
    CA_FILE,
    TIMEOUT,
    ALLOWED_SENDERS,
    DEFAULT_SENDER,
    MAX_MESSAGE_BYTES,
    MAX_ATTACHMENTS,
)

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0
DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_ATTACHMENTS = 20


class TlsMode(enum.StrEnum):
    """How the connection to the SMTP server is protected (``EMAIL_SMTP_TLS``)."""

    IMPLICIT = "implicit"
    """TLS from the first byte (SMTPS, usually port 465)."""
    STARTTLS = "starttls"
    """Plain connection upgraded with STARTTLS, which the server must offer (usually port 587)."""
    STARTTLS_OPTIONAL = "starttls-optional"
    """STARTTLS when the server offers it, otherwise plain text (then without login)."""
    NONE = "none"
    """Plain text throughout, login included (a relay on a trusted network only)."""


DEFAULT_PORTS = {TlsMode.IMPLICIT: 465, TlsMode.STARTTLS: 587, TlsMode.STARTTLS_OPTIONAL: 587, TlsMode.NONE: 25}


@dataclass(frozen=True)
class SenderPolicy:
    """Who may appear as the sender: exact addresses and whole domains (domains compared case-insensitively).

    ``source`` is the config key the policy comes from: ``EMAIL_ALLOWED_SENDERS``, or
    ``EMAIL_DEFAULT_SENDER`` when that list is unset and the default sender is the only one allowed.
    """

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    source: str = ALLOWED_SENDERS

    def allows(self, address: Address) -> bool:
        return normalized(address) in self.addresses or address.domain.lower() in self.domains


@dataclass(frozen=True, kw_only=True)
class EmailSettings:
    """Everything the connector reads from ``config``."""

    host: str
    port: int
    tls: TlsMode
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ca: str | None = field(default=None, repr=False)
    """``EMAIL_SMTP_CA_FILE``: a path to a PEM bundle, or the PEM text itself."""
    timeout: float = DEFAULT_TIMEOUT
    senders: SenderPolicy = SenderPolicy()
    default_sender: Address | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_attachments: int = DEFAULT_MAX_ATTACHMENTS

    @property
    def server(self) -> str:
        """``host:port`` for messages (the host in brackets when it is an IPv6 address)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(username, password) when a login is configured."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password


def _invalid(key: str, expected: str) -> CommandError:
    return CommandError(errors.INVALID_EMAIL_CONFIG, f"{key} in the proxy's config {expected}")


def _raw(config: Mapping[str, Any], key: str, *, strip: bool = True) -> str | None:
    """The value of ``key`` as a string, None when unset or empty."""
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _invalid(key, "must be a string")
    value = value.strip() if strip else value.removesuffix("\n").removesuffix("\r")
    return value or None


def _integer(config: Mapping[str, Any], key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    value = _raw(config, key)
    if value is None:
        return default
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
    try:
        number = int(value)
    except ValueError:
        raise _invalid(key, f"must be an integer {bounds}") from None
    if number < minimum or (maximum is not None and number > maximum):
        raise _invalid(key, f"must be an integer {bounds}")
    return number


def _timeout(config: Mapping[str, Any]) -> float:
    value = _raw(config, TIMEOUT)
    if value is None:
        return DEFAULT_TIMEOUT
    expected = f"must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}"
    try:
        seconds = float(value)
    except ValueError:
        raise _invalid(TIMEOUT, expected) from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT:
        raise _invalid(TIMEOUT, expected)
    return seconds


def _is_host(host: str) -> bool:
    """A host name, an IPv4 address or an IPv6 address (without brackets)."""
    if ":" not in host:
        return is_valid_domain(host)
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _host(config: Mapping[str, Any]) -> str:
    host = _raw(config, HOST)
    if host is None:
        raise CommandError(
            errors.EMAIL_NOT_CONFIGURED,
            f"{HOST} is not set in the proxy's config: there is no SMTP server to send with",
        )
    host = host.removeprefix("[").removesuffix("]")
    if not _is_host(host):
        raise _invalid(HOST, "must be a host name or an IP address (the port goes in EMAIL_SMTP_PORT)")
    return host


def _tls(config: Mapping[str, Any]) -> TlsMode:
    value = _raw(config, TLS)
    if value is None:
        return TlsMode.STARTTLS
    try:
        return TlsMode(value.lower())
    except ValueError:
        raise _invalid(TLS, "must be one of " + ", ".join(mode.value for mode in TlsMode)) from None


def _credentials(config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    username, password = _raw(config, USERNAME), _raw(config, PASSWORD, strip=False)
    if (username is None) != (password is None):
        present, missing = (USERNAME, PASSWORD) if password is None else (PASSWORD, USERNAME)
        raise CommandError(
            errors.INVALID_EMAIL_CONFIG,
            f"{present} is set in the proxy's config but {missing} is not: set both to log in, or neither",
        )
    return username, password


def _allowed_entry(entry: str, position: int) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, lower-cased domain) for one ``EMAIL_ALLOWED_SENDERS`` entry."""
    where = f"{ALLOWED_SENDERS} entry {position}"
    if entry.startswith("@"):
        domain = entry[1:]
        if not is_valid_domain(domain):
            raise CommandError(errors.INVALID_EMAIL_CONFIG, f"{where} is not a valid @domain")
        return None, domain.lower()
    try:
        address = parse_mailbox(entry)
    except AddressError as error:
        raise CommandError(errors.INVALID_EMAIL_CONFIG, f"{where} is not an address or @domain: {error}") from None
    if address.display_name:
        raise CommandError(errors.INVALID_EMAIL_CONFIG, f"{where} must be a bare address, without a display name")
    return normalized(address), None


def _allowed_senders(config: Mapping[str, Any]) -> SenderPolicy | None:
    value = _raw(config, ALLOWED_SENDERS)
    if value is None:
        return None
    addresses: set[str] = set()
    domains: set[str] = set()
    entries = [entry.strip() for entry in value.split(",")]
    for position, entry in enumerate((entry for entry in entries if entry), start=1):
        address, domain = _allowed_entry(entry, position)
        if address is not None:
            addresses.add(address)
        if domain is not None:
            domains.add(domain)
    if not addresses and not domains:
        return None
    return SenderPolicy(addresses=frozenset(addresses), domains=frozenset(domains))


def _default_sender(config: Mapping[str, Any]) -> Address | None:
    value = _raw(config, DEFAULT_SENDER)
    if value is None:
        return None
    try:
        return parse_mailbox(value)
    except AddressError as error:
        raise CommandError(errors.INVALID_EMAIL_CONFIG, f"{DEFAULT_SENDER} is not a valid address: {error}") from None


def _sender_policy(allowed: SenderPolicy | None, default: Address | None) -> SenderPolicy:
    if allowed is None:
        if default is None:
            raise CommandError(
                errors.EMAIL_NOT_CONFIGURED,
                f"neither {DEFAULT_SENDER} nor {ALLOWED_SENDERS} is set in the proxy's config: no sender is allowed",
            )
        return SenderPolicy(addresses=frozenset({normalized(default)}), source=DEFAULT_SENDER)
    if default is not None and not allowed.allows(default):
        raise CommandError(errors.INVALID_EMAIL_CONFIG, f"{DEFAULT_SENDER} is not allowed by {ALLOWED_SENDERS}")
    return allowed


def load_settings(config: Mapping[str, Any]) -> EmailSettings:
    """Parse and check the connector's keys of ``config``.

    :raises CommandError: ``EmailNotConfigured`` when no SMTP server or no sender is configured,
        ``InvalidEmailConfig`` when a value is invalid.
    """
    host = _host(config)
    tls = _tls(config)
    username, password = _credentials(config)
    default_sender = _default_sender(config)
    return EmailSettings(
        host=host,
        port=_integer(config, PORT, DEFAULT_PORTS[tls], minimum=1, maximum=65535),
        tls=tls,
        username=username,
        password=password,
        ca=_raw(config, CA_FILE),
        timeout=_timeout(config),
        senders=_sender_policy(_allowed_senders(config), default_sender),
        default_sender=default_sender,
        max_message_bytes=_integer(config, MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES, minimum=1),
        max_attachments=_integer(config, MAX_ATTACHMENTS, DEFAULT_MAX_ATTACHMENTS, minimum=0),
    )
