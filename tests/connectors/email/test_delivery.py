"""SendEmail against real SMTP servers: what arrives, over which protection, and how failures are reported.

Fixtures (``send``, the servers, the config factories) come from this directory's conftest.py.
"""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from spiff_connector_email import errors
from spiff_connector_sdk import CommandError

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40  # binary: every byte value
CSV = "name,amount\nZoë,12\n".encode()


def _text(part: EmailMessage | None) -> str:
    """A text part's content with the wire's CRLF line ends as LF."""
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def _attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    """filename -> (content type, bytes) of every attachment."""
    found: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        payload = part.get_content()
        data = payload if isinstance(payload, bytes) else payload.encode()
        found[str(part.get_filename())] = (part.get_content_type(), data)
    return found


async def _refused(send: Any, config: dict[str, str], **params: Any) -> CommandError:
    with pytest.raises(CommandError) as caught:
        await send(config, **params)
    return caught.value


async def test_text_html_and_attachments_arrive_over_starttls_with_login(
    send: Any, starttls_server: Any, starttls_config: Any, account: Any
) -> None:
    result, ctx = await send(
        starttls_config(starttls_server),
        to=["Ops Team <ops@example.com>", "jane@example.org"],
        cc="Zoë Ünal <zoe@example.net>",
        bcc=["audit@example.com", "ops@EXAMPLE.com"],  # the second is ops@example.com again: sent once
        reply_to="helpdesk@example.com",
        subject="Order 42 — shipped ✓",
        text="Your order shipped.\nRegards, Zoë",
        html="<p>Your order <b>shipped</b>.</p>",
        headers={"X-Ticket": "42", "X-Note": "grüße"},
        attachments=[
            {"filename": "invoice.pdf", "content": base64.encodebytes(PDF).decode()},  # line-wrapped base64
            {
                "filename": "résumé.csv",
                "content": "data:text/csv;charset=utf-8;base64," + base64.b64encode(CSV).decode(),
            },
        ],
    )

    received = starttls_server.only_message()
    assert received.tls and received.authenticated
    assert received.mail_from == account.sender
    assert received.rcpt_tos == ("ops@example.com", "jane@example.org", "zoe@example.net", "audit@example.com")
    message = received.message
    assert str(message["From"]) == f"Workflow <{account.sender}>"
    assert str(message["To"]) == "Ops Team <ops@example.com>, jane@example.org"
    assert str(message["Cc"]) == "Zoë Ünal <zoe@example.net>"
    assert str(message["Reply-To"]) == "helpdesk@example.com"
    assert str(message["Subject"]) == "Order 42 — shipped ✓"
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert message["Bcc"] is None and b"audit@example.com" not in head
    assert message["Date"].datetime is not None
    assert str(message["X-Ticket"]) == "42" and str(message["X-Note"]) == "grüße"
    assert str(message["Message-ID"]) == result.body["message_id"]
    assert result.body["message_id"].startswith("<") and result.body["message_id"].endswith("@example.com>")
    assert message.get_content_type() == "multipart/mixed"
    assert _text(message.get_body(("plain",))) == "Your order shipped.\nRegards, Zoë\n"
    assert _text(message.get_body(("html",))) == "<p>Your order <b>shipped</b>.</p>\n"
    assert _attachments(message) == {"invoice.pdf": ("application/pdf", PDF), "résumé.csv": ("text/csv", CSV)}
    assert all(byte < 128 for byte in received.data), "the message is 7-bit clean"

    assert result.body["accepted"] == list(received.rcpt_tos)
    assert result.body["refused"] == {}
    assert ctx.logs == [
        f"sent message {result.body['message_id']} via 127.0.0.1:{starttls_server.port} to 4 recipient(s) (0 refused)"
    ]


async def test_text_only_and_html_only_messages(send: Any, plain_server: Any, plain_config: Any) -> None:
    await send(plain_config(plain_server), text="just text")
    await send(plain_config(plain_server), text=None, html="<h1>just html</h1>")

    text_only, html_only = (item.message for item in plain_server.messages())
    assert text_only.get_content_type() == "text/plain" and _text(text_only) == "just text\n"
    assert html_only.get_content_type() == "text/html" and _text(html_only) == "<h1>just html</h1>\n"
    assert str(html_only["MIME-Version"]) == "1.0"


async def test_a_sender_of_an_allowed_domain(send: Any, plain_server: Any, plain_config: Any) -> None:
    await send(plain_config(plain_server), sender="Billing <billing@ALLOWED.example>")

    received = plain_server.only_message()
    assert received.mail_from == "billing@ALLOWED.example"
    assert str(received.message["From"]) == "Billing <billing@ALLOWED.example>"
    assert str(received.message["Message-ID"]).endswith("@ALLOWED.example>")


async def test_implicit_tls_with_login(send: Any, implicit_server: Any, starttls_config: Any) -> None:
    await send(starttls_config(implicit_server, EMAIL_SMTP_TLS="implicit"), subject="implicit")

    received = implicit_server.only_message()
    assert received.tls and received.authenticated
    assert str(received.message["Subject"]) == "implicit"


async def test_the_ca_bundle_may_be_given_as_pem_text(
    send: Any, starttls_server: Any, starttls_config: Any, certificate: Any
) -> None:
    await send(starttls_config(starttls_server, EMAIL_SMTP_CA_FILE=certificate.pem))

    assert starttls_server.only_message().tls


async def test_starttls_optional_sends_in_the_clear_to_a_server_without_starttls(
    send: Any, plain_server: Any, plain_config: Any
) -> None:
    result, _ = await send(plain_config(plain_server, EMAIL_SMTP_TLS="starttls-optional"))

    received = plain_server.only_message()
    assert not received.tls and not received.authenticated
    assert result.body["accepted"] == ["ops@example.com"]


async def test_starttls_optional_upgrades_when_offered(send: Any, starttls_server: Any, starttls_config: Any) -> None:
    await send(starttls_config(starttls_server, EMAIL_SMTP_TLS="starttls-optional"))

    assert starttls_server.only_message().tls


async def test_starttls_required_but_not_offered(send: Any, plain_server: Any, plain_config: Any) -> None:
    error = await _refused(send, plain_config(plain_server, EMAIL_SMTP_TLS="starttls"))

    assert error.code == errors.STARTTLS_NOT_OFFERED
    assert f"127.0.0.1:{plain_server.port} does not offer STARTTLS" in error.message
    assert plain_server.messages() == []


async def test_starttls_optional_never_sends_credentials_in_the_clear(
    send: Any, plain_server: Any, plain_config: Any, account: Any
) -> None:
    config = plain_config(
        plain_server,
        EMAIL_SMTP_TLS="starttls-optional",
        EMAIL_SMTP_USERNAME=account.username,
        EMAIL_SMTP_PASSWORD=account.password,
    )
    error = await _refused(send, config)

    assert error.code == errors.STARTTLS_NOT_OFFERED
    assert "never sent unencrypted" in error.message
    assert plain_server.messages() == []


async def test_credentials_for_a_server_without_auth(
    send: Any, plain_server: Any, plain_config: Any, account: Any
) -> None:
    config = plain_config(plain_server, EMAIL_SMTP_USERNAME=account.username, EMAIL_SMTP_PASSWORD=account.password)
    error = await _refused(send, config)

    assert error.code == errors.SMTP_AUTHENTICATION_ERROR
    assert "does not offer SMTP AUTH" in error.message
    assert account.password not in error.message


async def test_wrong_password(send: Any, starttls_server: Any, starttls_config: Any) -> None:
    wrong = "n0t-the-Pa55word"
    error = await _refused(send, starttls_config(starttls_server, EMAIL_SMTP_PASSWORD=wrong))

    assert error.code == errors.SMTP_AUTHENTICATION_ERROR
    assert error.message.startswith(f"127.0.0.1:{starttls_server.port} refused the login: 535 5.7.8 Bad credentials")
    assert wrong not in error.message and "***" in error.message  # the server quoted it
    assert starttls_server.messages() == []


async def test_without_login_the_server_refuses_the_sender(
    send: Any, starttls_server: Any, starttls_config: Any
) -> None:
    config = starttls_config(starttls_server)
    del config["EMAIL_SMTP_USERNAME"], config["EMAIL_SMTP_PASSWORD"]
    error = await _refused(send, config)

    assert error.code == errors.SENDER_REFUSED
    assert "530" in error.message


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_untrusted_certificate(
    mode: str, send: Any, starttls_server: Any, implicit_server: Any, starttls_config: Any
) -> None:
    server = starttls_server if mode == "starttls" else implicit_server
    config = starttls_config(server, EMAIL_SMTP_TLS=mode)
    del config["EMAIL_SMTP_CA_FILE"]  # the system store does not trust the self-signed certificate
    error = await _refused(send, config)

    assert error.code == errors.TLS_ERROR
    assert (
        error.message == f"TLS with 127.0.0.1:{server.port} failed: certificate verify failed: self-signed certificate"
    )
    assert server.messages() == []


async def test_a_certificate_from_another_ca(
    send: Any, starttls_server: Any, starttls_config: Any, other_certificate: Any
) -> None:
    error = await _refused(send, starttls_config(starttls_server, EMAIL_SMTP_CA_FILE=str(other_certificate.cert_file)))

    assert error.code == errors.TLS_ERROR
    assert "certificate verify failed" in error.message


async def test_implicit_tls_against_a_server_not_speaking_tls(send: Any, plain_server: Any, plain_config: Any) -> None:
    error = await _refused(send, plain_config(plain_server, EMAIL_SMTP_TLS="implicit"))

    assert error.code == errors.TLS_ERROR


async def test_a_refused_recipient_is_reported_and_the_others_get_the_message(
    send: Any, plain_server: Any, plain_config: Any
) -> None:
    result, ctx = await send(plain_config(plain_server), to=["ops@example.com", "refused-1@example.com"])

    assert result.body["accepted"] == ["ops@example.com"]
    assert result.body["refused"] == {"refused-1@example.com": "550 5.1.1 No such user here"}
    assert plain_server.only_message().rcpt_tos == ("ops@example.com",)
    assert ctx.logs[0].endswith("to 2 recipient(s) (1 refused)")


async def test_every_recipient_refused(send: Any, plain_server: Any, plain_config: Any) -> None:
    error = await _refused(send, plain_config(plain_server), to=["refused-1@example.com"], bcc="refused-2@example.com")

    assert error.code == errors.RECIPIENTS_REFUSED
    assert error.body == {
        "refused": {
            "refused-1@example.com": "550 5.1.1 No such user here",
            "refused-2@example.com": "550 5.1.1 No such user here",
        }
    }
    assert "refused-2@example.com: 550 5.1.1 No such user here" in error.message
    assert plain_server.messages() == []


async def test_the_server_refuses_the_sender(send: Any, plain_server: Any, plain_config: Any, account: Any) -> None:
    error = await _refused(send, plain_config(plain_server), sender=account.blocked_sender)

    assert error.code == errors.SENDER_REFUSED
    assert error.message == (
        f"127.0.0.1:{plain_server.port} refused the sender {account.blocked_sender}: "
        "553 5.7.1 Sender address rejected: not permitted"
    )


async def test_the_server_refuses_the_message(send: Any, plain_server: Any, plain_config: Any) -> None:
    error = await _refused(send, plain_config(plain_server), headers={"X-Test-Reject": "yes"})

    assert error.code == errors.SMTP_DATA_ERROR
    assert error.message == f"127.0.0.1:{plain_server.port} refused the message: 554 5.6.0 Message content rejected"


async def test_the_server_refuses_the_size(send: Any, plain_server: Any, plain_config: Any) -> None:
    big = base64.b64encode(b"x" * plain_server.size_limit).decode()
    error = await _refused(send, plain_config(plain_server), attachments=[{"filename": "big.bin", "content": big}])

    assert error.code == errors.MESSAGE_TOO_LARGE
    assert " 552 " in error.message
    assert plain_server.messages() == []


async def test_connection_refused(send: Any, plain_config: Any, closed_port: int) -> None:
    error = await _refused(send, plain_config(closed_port))

    assert error.code == errors.SMTP_CONNECT_ERROR
    assert error.message.startswith(f"cannot connect to 127.0.0.1:{closed_port}: ")
    assert error.message == f"cannot connect to 127.0.0.1:{closed_port}: Connection refused"


async def test_connection_refused_on_every_address_of_a_name(send: Any, plain_config: Any, closed_port: int) -> None:
    error = await _refused(send, plain_config(closed_port, EMAIL_SMTP_HOST="localhost"))

    assert error.code == errors.SMTP_CONNECT_ERROR
    assert error.message.startswith(f"cannot connect to localhost:{closed_port}: ")
    assert "Connect call failed" in error.message or "Connection refused" in error.message


async def test_a_server_that_never_answers(send: Any, plain_config: Any, silent_port: int) -> None:
    started = time.monotonic()
    error = await _refused(send, plain_config(silent_port, EMAIL_SMTP_TIMEOUT="0.3"))

    assert error.code == errors.SMTP_TIMEOUT
    assert error.message == f"127.0.0.1:{silent_port} did not answer within 0.3 s (waiting for the greeting)"
    assert time.monotonic() - started < 5


async def test_implicit_tls_with_a_server_that_never_answers(send: Any, starttls_config: Any, silent_port: int) -> None:
    started = time.monotonic()
    error = await _refused(send, starttls_config(silent_port, EMAIL_SMTP_TLS="implicit", EMAIL_SMTP_TIMEOUT="0.3"))

    assert error.code == errors.SMTP_CONNECT_ERROR  # the TLS handshake is part of connecting
    assert error.message.startswith(f"cannot connect to 127.0.0.1:{silent_port}: ")
    assert time.monotonic() - started < 5


async def test_no_tcp_connection_within_the_timeout(send: Any, plain_config: Any, full_backlog_port: int) -> None:
    started = time.monotonic()
    error = await _refused(send, plain_config(full_backlog_port, EMAIL_SMTP_TIMEOUT="0.3"))

    assert error.code == errors.SMTP_CONNECT_ERROR
    assert error.message == f"cannot connect to 127.0.0.1:{full_backlog_port}: no connection within 0.3 s"
    assert time.monotonic() - started < 5


async def test_an_unreadable_ca_file(send: Any, starttls_server: Any, starttls_config: Any) -> None:
    missing = "/nonexistent/ca-bundle.pem"
    error = await _refused(send, starttls_config(starttls_server, EMAIL_SMTP_CA_FILE=missing))

    assert error.code == errors.INVALID_EMAIL_CONFIG
    assert error.message == (
        "EMAIL_SMTP_CA_FILE in the proxy's config is neither PEM text nor a readable file (No such file or directory)"
    )


async def test_a_directory_as_ca_file(send: Any, starttls_server: Any, starttls_config: Any, tmp_path: Path) -> None:
    error = await _refused(send, starttls_config(starttls_server, EMAIL_SMTP_CA_FILE=str(tmp_path)))

    assert error.code == errors.INVALID_EMAIL_CONFIG
    assert error.message == "EMAIL_SMTP_CA_FILE in the proxy's config cannot be read (Is a directory)"


@pytest.mark.parametrize("kind", ["pem text", "file"])
async def test_a_ca_value_without_certificates(
    kind: str, send: Any, starttls_server: Any, starttls_config: Any, tmp_path: Path
) -> None:
    value = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    if kind == "file":
        (tmp_path / "README").write_text("not a certificate\n")
        value = str(tmp_path / "README")
    error = await _refused(send, starttls_config(starttls_server, EMAIL_SMTP_CA_FILE=value))

    assert error.code == errors.INVALID_EMAIL_CONFIG
    assert error.message == "EMAIL_SMTP_CA_FILE in the proxy's config holds no valid PEM CA certificate"
