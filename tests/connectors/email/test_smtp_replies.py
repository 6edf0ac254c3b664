"""SendEmail against servers that answer from a script: replies and failures no well-behaved server gives on demand."""

from __future__ import annotations

from typing import Any

import pytest

from spiff_connector_email import errors
from spiff_connector_sdk import CommandError


async def _refused(send: Any, config: dict[str, str], **params: Any) -> CommandError:
    with pytest.raises(CommandError) as caught:
        await send(config, **params)
    return caught.value


async def test_a_greeting_that_refuses_service(send: Any, plain_config: Any, scripted_smtp: Any) -> None:
    server = scripted_smtp(greeting="554 5.3.2 No SMTP service here")
    error = await _refused(send, plain_config(server.port))

    assert error.code == errors.SMTP_CONNECT_ERROR
    assert error.message == f"127.0.0.1:{server.port} refused service: 554 5.3.2 No SMTP service here"


async def test_a_server_that_hangs_up_at_once(send: Any, plain_config: Any, scripted_smtp: Any) -> None:
    server = scripted_smtp(greeting=None)
    error = await _refused(send, plain_config(server.port))

    assert error.code == errors.SMTP_CONNECT_ERROR
    assert error.message.startswith(f"cannot connect to 127.0.0.1:{server.port}: ")


async def test_an_unknown_host(send: Any, plain_config: Any) -> None:
    error = await _refused(send, plain_config(25, EMAIL_SMTP_HOST="nonexistent.invalid"))

    assert error.code == errors.SMTP_CONNECT_ERROR
    assert error.message.startswith("cannot connect to nonexistent.invalid:25: ")


async def test_starttls_refused_by_the_server(send: Any, plain_config: Any, scripted_smtp: Any) -> None:
    server = scripted_smtp(EHLO="250-scripted.test\r\n250 STARTTLS", STARTTLS="454 4.7.0 TLS not available now")
    error = await _refused(send, plain_config(server.port, EMAIL_SMTP_TLS="starttls"))

    assert error.code == errors.SMTP_ERROR
    assert error.message == f"127.0.0.1:{server.port} answered 454 4.7.0 TLS not available now (starting TLS)"


async def test_ehlo_refused_where_starttls_is_needed(send: Any, plain_config: Any, scripted_smtp: Any) -> None:
    server = scripted_smtp(EHLO="554 5.5.1 Go away")
    error = await _refused(send, plain_config(server.port, EMAIL_SMTP_TLS="starttls"))

    assert error.code == errors.SMTP_ERROR
    assert error.message == f"127.0.0.1:{server.port} answered 554 5.5.1 Go away (starting TLS)"


async def test_a_helo_only_server(send: Any, plain_config: Any, scripted_smtp: Any) -> None:
    server = scripted_smtp(EHLO="500 5.5.1 Unknown command")
    result, _ = await send(plain_config(server.port))

    assert result.body["accepted"] == ["ops@example.com"]
    assert [line.split(" ")[0] for line in server.lines] == ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT"]


async def test_no_common_auth_mechanism(send: Any, plain_config: Any, scripted_smtp: Any, account: Any) -> None:
    server = scripted_smtp(EHLO="250-scripted.test\r\n250 AUTH GSSAPI")
    config = plain_config(server.port, EMAIL_SMTP_USERNAME=account.username, EMAIL_SMTP_PASSWORD=account.password)
    error = await _refused(send, config)

    assert error.code == errors.SMTP_AUTHENTICATION_ERROR
    assert error.message == f"cannot log in to 127.0.0.1:{server.port}: No suitable authentication method found."


async def test_mode_none_logs_in_without_tls_and_replies_never_show_the_password(
    send: Any, plain_config: Any, scripted_smtp: Any, account: Any
) -> None:
    server = scripted_smtp(
        EHLO="250-scripted.test\r\n250 AUTH PLAIN", MAIL=f"553 5.7.1 Not with password {account.password}"
    )
    config = plain_config(server.port, EMAIL_SMTP_USERNAME=account.username, EMAIL_SMTP_PASSWORD=account.password)
    error = await _refused(send, config)

    assert any(line.startswith("AUTH PLAIN") for line in server.lines)
    assert error.code == errors.SENDER_REFUSED
    assert error.message.endswith("553 5.7.1 Not with password ***")


async def test_the_connection_drops_during_the_transaction(send: Any, plain_config: Any, scripted_smtp: Any) -> None:
    server = scripted_smtp(RCPT=None)
    error = await _refused(send, plain_config(server.port))

    assert error.code == errors.SMTP_ERROR
    assert error.message.startswith(f"SMTP with 127.0.0.1:{server.port} failed (sending the message): ")


async def test_the_server_refuses_the_size_at_the_end(send: Any, plain_config: Any, scripted_smtp: Any) -> None:
    server = scripted_smtp(data_end="552 5.3.4 Message size exceeds fixed limit")
    error = await _refused(send, plain_config(server.port))

    assert error.code == errors.MESSAGE_TOO_LARGE
    assert error.message == f"127.0.0.1:{server.port} refused the message: 552 5.3.4 Message size exceeds fixed limit"


@pytest.mark.parametrize("quit_reply", [None, "500 5.5.1 What?"])
async def test_a_failing_quit_after_the_message_was_accepted_is_a_success(
    send: Any, plain_config: Any, scripted_smtp: Any, quit_reply: str | None
) -> None:
    server = scripted_smtp(QUIT=quit_reply)
    result, ctx = await send(plain_config(server.port))

    assert result.body["accepted"] == ["ops@example.com"]
    assert len(ctx.logs) == 1


async def test_a_long_multiline_reply_becomes_one_short_line(send: Any, plain_config: Any, scripted_smtp: Any) -> None:
    server = scripted_smtp(MAIL="550-5.7.1 first line\r\n550 5.7.1 " + "x" * 400)
    error = await _refused(send, plain_config(server.port))

    assert error.code == errors.SENDER_REFUSED
    assert "\n" not in error.message and "first line" in error.message
    assert error.message.endswith("...") and len(error.message) < 400
