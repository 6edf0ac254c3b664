"""Parsing the proxy's config into EmailSettings: defaults, checks, and errors that name keys, never values."""

from __future__ import annotations

from email.headerregistry import Address
from typing import Any

import pytest

from spiff_connector_email import errors
from spiff_connector_email.settings import EmailSettings, TlsMode, load_settings
from spiff_connector_sdk import CommandError

HOST_EXPECTED = "must be a host name or an IP address (the port goes in EMAIL_SMTP_PORT)"
MINIMAL = {"EMAIL_SMTP_HOST": "smtp.example.com", "EMAIL_DEFAULT_SENDER": "noreply@example.com"}


def _error(config: dict[str, Any]) -> CommandError:
    with pytest.raises(CommandError) as caught:
        load_settings(config)
    return caught.value


def test_defaults() -> None:
    settings = load_settings(MINIMAL)

    assert settings == EmailSettings(
        host="smtp.example.com",
        port=587,
        tls=TlsMode.STARTTLS,
        timeout=30.0,
        senders=settings.senders,
        default_sender=Address(username="noreply", domain="example.com"),
        max_message_bytes=10 * 1024 * 1024,
        max_attachments=20,
    )
    assert settings.credentials is None and settings.ca is None
    assert settings.senders.source == "EMAIL_DEFAULT_SENDER"
    assert settings.senders.allows(Address(username="noreply", domain="EXAMPLE.com"))
    assert not settings.senders.allows(Address(username="other", domain="example.com"))
    assert settings.server == "smtp.example.com:587"


@pytest.mark.parametrize(
    ("mode", "port"), [("implicit", 465), ("starttls", 587), ("STARTTLS-Optional", 587), ("none", 25)]
)
def test_the_default_port_follows_the_tls_mode(mode: str, port: int) -> None:
    settings = load_settings({**MINIMAL, "EMAIL_SMTP_TLS": mode})

    assert settings.port == port
    assert settings.tls == mode.lower()


def test_every_key() -> None:
    settings = load_settings(
        {
            "EMAIL_SMTP_HOST": " [2001:db8::25] ",
            "EMAIL_SMTP_PORT": "2525",
            "EMAIL_SMTP_TLS": "implicit",
            "EMAIL_SMTP_USERNAME": " mailer ",
            "EMAIL_SMTP_PASSWORD": " pass word \n",
            "EMAIL_SMTP_CA_FILE": "/etc/ssl/smtp-ca.pem",
            "EMAIL_SMTP_TIMEOUT": "2.5",
            "EMAIL_ALLOWED_SENDERS": " ops@example.com ,, @Example.ORG, ",
            "EMAIL_DEFAULT_SENDER": "Ops <ops@EXAMPLE.com>",
            "EMAIL_MAX_MESSAGE_BYTES": "1048576",
            "EMAIL_MAX_ATTACHMENTS": "0",
        }
    )

    assert settings.server == "[2001:db8::25]:2525"
    assert settings.credentials == ("mailer", " pass word ")  # only the trailing line break goes
    assert settings.ca == "/etc/ssl/smtp-ca.pem"
    assert settings.timeout == 2.5
    assert settings.senders.addresses == {"ops@example.com"} and settings.senders.domains == {"example.org"}
    assert settings.senders.source == "EMAIL_ALLOWED_SENDERS"
    assert settings.senders.allows(Address(username="anyone", domain="EXAMPLE.org"))
    assert not settings.senders.allows(Address(username="OPS", domain="example.com"))  # local parts are exact
    assert (settings.max_message_bytes, settings.max_attachments) == (1048576, 0)


def test_numbers_from_a_json_config_file() -> None:
    settings = load_settings({**MINIMAL, "EMAIL_SMTP_PORT": 2525, "EMAIL_SMTP_TIMEOUT": 3, "EMAIL_MAX_ATTACHMENTS": 5})

    assert (settings.port, settings.timeout, settings.max_attachments) == (2525, 3.0, 5)


def test_the_password_is_not_in_the_repr() -> None:
    settings = load_settings({**MINIMAL, "EMAIL_SMTP_USERNAME": "mailer", "EMAIL_SMTP_PASSWORD": "hunter2-x"})

    assert "hunter2-x" not in repr(settings) and "mailer" not in repr(settings)


@pytest.mark.parametrize("host", [None, "", "   "])
def test_no_smtp_host(host: str | None) -> None:
    config: dict[str, Any] = {**MINIMAL, "EMAIL_SMTP_HOST": host}
    error = _error(config)

    assert error.code == errors.EMAIL_NOT_CONFIGURED
    assert error.message.startswith("EMAIL_SMTP_HOST is not set")


def test_no_sender_configured() -> None:
    error = _error({"EMAIL_SMTP_HOST": "smtp.example.com"})

    assert error.code == errors.EMAIL_NOT_CONFIGURED
    assert "EMAIL_DEFAULT_SENDER" in error.message and "EMAIL_ALLOWED_SENDERS" in error.message


def test_allowed_senders_without_a_default_sender() -> None:
    settings = load_settings({"EMAIL_SMTP_HOST": "smtp.example.com", "EMAIL_ALLOWED_SENDERS": "@example.com"})

    assert settings.default_sender is None
    assert settings.senders.domains == {"example.com"}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("EMAIL_SMTP_HOST", "smtp.example.com:587", HOST_EXPECTED),
        ("EMAIL_SMTP_HOST", "smtp example", HOST_EXPECTED),
        ("EMAIL_SMTP_HOST", "2001:db8::zz", HOST_EXPECTED),
        ("EMAIL_SMTP_PORT", "0x1f", "must be an integer from 1 to 65535"),
        ("EMAIL_SMTP_PORT", "0", "must be an integer from 1 to 65535"),
        ("EMAIL_SMTP_PORT", "65536", "must be an integer from 1 to 65535"),
        ("EMAIL_SMTP_PORT", True, "must be a string"),
        ("EMAIL_SMTP_TLS", "ssl", "must be one of implicit, starttls, starttls-optional, none"),
        ("EMAIL_SMTP_TIMEOUT", "soon", "must be a number of seconds above 0 and at most 300"),
        ("EMAIL_SMTP_TIMEOUT", "0.0", "must be a number of seconds above 0 and at most 300"),
        ("EMAIL_SMTP_TIMEOUT", "301", "must be a number of seconds above 0 and at most 300"),
        ("EMAIL_SMTP_TIMEOUT", "nan", "must be a number of seconds above 0 and at most 300"),
        ("EMAIL_MAX_MESSAGE_BYTES", "0", "must be an integer of at least 1"),
        ("EMAIL_MAX_MESSAGE_BYTES", "10MB", "must be an integer of at least 1"),
        ("EMAIL_MAX_ATTACHMENTS", "-1", "must be an integer of at least 0"),
        ("EMAIL_SMTP_CA_FILE", ["a.pem"], "must be a string"),
    ],
)
def test_invalid_values_name_the_key_and_not_the_value(key: str, value: Any, expected: str) -> None:
    error = _error({**MINIMAL, key: value})

    assert error.code == errors.INVALID_EMAIL_CONFIG
    assert error.message == f"{key} in the proxy's config {expected}"
    assert str(value) not in error.message


@pytest.mark.parametrize(
    ("present", "missing"),
    [("EMAIL_SMTP_USERNAME", "EMAIL_SMTP_PASSWORD"), ("EMAIL_SMTP_PASSWORD", "EMAIL_SMTP_USERNAME")],
)
def test_a_username_needs_a_password_and_the_other_way_round(present: str, missing: str) -> None:
    error = _error({**MINIMAL, present: "x-value-1"})

    assert error.code == errors.INVALID_EMAIL_CONFIG
    assert (
        error.message == f"{present} is set in the proxy's config but {missing} is not: set both to log in, or neither"
    )


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ("ops@example.com, @bad_domain", "EMAIL_ALLOWED_SENDERS entry 2 is not a valid @domain"),
        ("nobody", "EMAIL_ALLOWED_SENDERS entry 1 is not an address or @domain: it does not parse as an email address"),
        ("Ops <ops@example.com>", "EMAIL_ALLOWED_SENDERS entry 1 must be a bare address, without a display name"),
    ],
)
def test_invalid_allowed_senders(entries: str, expected: str) -> None:
    error = _error({**MINIMAL, "EMAIL_ALLOWED_SENDERS": entries})

    assert error.code == errors.INVALID_EMAIL_CONFIG
    assert error.message == expected


def test_an_empty_allow_list_is_unset() -> None:
    settings = load_settings({**MINIMAL, "EMAIL_ALLOWED_SENDERS": " , "})

    assert settings.senders.source == "EMAIL_DEFAULT_SENDER"


def test_an_invalid_default_sender() -> None:
    error = _error({**MINIMAL, "EMAIL_DEFAULT_SENDER": "noreply at example.com"})

    assert error.code == errors.INVALID_EMAIL_CONFIG
    assert error.message.startswith("EMAIL_DEFAULT_SENDER is not a valid address: ")
    assert "noreply" not in error.message


def test_the_default_sender_must_be_allowed() -> None:
    error = _error({**MINIMAL, "EMAIL_ALLOWED_SENDERS": "@example.org"})

    assert error.code == errors.INVALID_EMAIL_CONFIG
    assert error.message == "EMAIL_DEFAULT_SENDER is not allowed by EMAIL_ALLOWED_SENDERS"
