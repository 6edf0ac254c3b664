"""SendEmail's checks of its parameters: every refusal comes before anything is sent.

The configuration points at the plain test server; each test that expects a refusal also checks that
the server received nothing.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from spiff_connector_email import errors
from spiff_connector_sdk import CommandError


@pytest.fixture
def config(plain_server: Any, plain_config: Any) -> dict[str, str]:
    return plain_config(plain_server)


@pytest.fixture
def refused(send: Any, config: dict[str, str], plain_server: Any) -> Any:
    """``await refused(**params)``: the CommandError SendEmail raises; the server got nothing."""

    async def call(**params: Any) -> CommandError:
        with pytest.raises(CommandError) as caught:
            await send(config, **params)
        assert plain_server.messages() == []
        return caught.value

    return call


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("nobody", "it does not parse as an email address"),
        ("nobody@", "it does not parse as an email address"),  # the standard library's parser raises here
        ('"', "it does not parse as an email address"),
        ("@example.com", "it does not parse as an email address"),
        ("", "it is empty"),
        ("a@example.com, b@example.com", "it must be exactly one address (pass several as a list)"),
        ("team: a@example.com;", "it must be exactly one address (pass several as a list)"),
        ("a@example.com\r\nBcc: spy@evil.example", "it contains a line break or another control character"),
        ("a@example.com\nX-Injected: 1", "it contains a line break or another control character"),
        ('"ceo@example.com" <phish@evil.example>', "the display name must not contain @"),
        ("alice@example.org)<bob@example.org>", "it does not parse as an email address"),
        ("Ops <ops@example.com", "it does not parse as an email address"),
        ("<@relay.example:ops@example.com>", "it does not parse as an email address"),
        ('"john smith"@example.com', "the part before @ must be plain ASCII"),
        ("zoë@example.com", "it does not parse as an email address"),
        ("ops@exämple.com", "the domain must be a host name"),
        ("ops@[192.0.2.1]", "the domain must be a host name"),
        ("ops@-example.com", "the domain must be a host name"),
        ("a" * 65 + "@example.com", "it is too long"),
    ],
)
async def test_invalid_recipient(refused: Any, address: str, reason: str) -> None:
    error = await refused(to=["ok@example.com", address])

    assert error.code == errors.INVALID_ADDRESS
    assert error.message.startswith(f"to[1] is not a valid address: {reason}")


@pytest.mark.parametrize("parameter", ["cc", "bcc", "reply_to"])
async def test_every_address_parameter_is_checked(refused: Any, parameter: str) -> None:
    error = await refused(**{parameter: "not an address"})

    assert error.code == errors.INVALID_ADDRESS
    assert error.message.startswith(f"{parameter} is not a valid address: ")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to": 42}, "to must be an address or a list of addresses"),
        ({"to": ["ok@example.com", 7]}, "to[1] must be a string"),
        ({"sender": ["workflow@example.com"]}, "sender must be one address"),
    ],
)
async def test_addresses_of_the_wrong_type(refused: Any, params: dict[str, Any], message: str) -> None:
    error = await refused(**params)

    assert (error.code, error.message) == (errors.INVALID_ADDRESS, message)


async def test_no_recipient(refused: Any) -> None:
    error = await refused(to=[], cc=None, bcc=[])

    assert error.code == errors.INVALID_MESSAGE
    assert error.message == "no recipient: give at least one address in to, cc or bcc"


async def test_bcc_alone_is_enough(send: Any, config: dict[str, str], plain_server: Any) -> None:
    await send(config, to=[], bcc="hidden@example.com")

    received = plain_server.only_message()
    assert received.rcpt_tos == ("hidden@example.com",)
    assert received.message["To"] is None and b"hidden@example.com" not in received.data


async def test_no_body(refused: Any) -> None:
    error = await refused(text=None, html=None)

    assert (error.code, error.message) == (errors.INVALID_MESSAGE, "no body: give text, html or both")


@pytest.mark.parametrize("parameter", ["text", "html"])
async def test_a_body_must_be_a_string(refused: Any, parameter: str) -> None:
    error = await refused(**{parameter: {"not": "text"}})

    assert (error.code, error.message) == (errors.INVALID_MESSAGE, f"{parameter} must be a string")


async def test_text_that_cannot_be_encoded(refused: Any) -> None:
    error = await refused(text="broken \ud800 surrogate")

    assert error.code == errors.INVALID_MESSAGE
    assert "surrogate" in error.message and "broken" not in error.message


async def test_a_sender_not_allowed(refused: Any) -> None:
    error = await refused(sender="ceo@example.com")

    assert error.code == errors.SENDER_NOT_ALLOWED
    assert error.message == "sender ceo@example.com is not allowed by EMAIL_ALLOWED_SENDERS"


async def test_only_the_default_sender_without_an_allow_list(
    send: Any, plain_server: Any, plain_config: Any, account: Any
) -> None:
    config = plain_config(plain_server)
    del config["EMAIL_ALLOWED_SENDERS"]
    await send(config, sender=f"Someone <{account.sender}>")
    with pytest.raises(CommandError) as caught:
        await send(config, sender="billing@allowed.example")

    assert caught.value.code == errors.SENDER_NOT_ALLOWED
    assert caught.value.message == "sender billing@allowed.example is not allowed by EMAIL_DEFAULT_SENDER"
    assert len(plain_server.messages()) == 1


async def test_a_sender_is_required_without_a_default(send: Any, plain_server: Any, plain_config: Any) -> None:
    config = plain_config(plain_server)
    del config["EMAIL_DEFAULT_SENDER"]
    with pytest.raises(CommandError) as caught:
        await send(config)

    assert caught.value.code == errors.INVALID_MESSAGE
    assert caught.value.message == "sender is required: EMAIL_DEFAULT_SENDER is not set in the proxy's config"


async def test_an_invalid_sender(refused: Any) -> None:
    error = await refused(sender="workflow@example.com\r\nBcc: spy@evil.example")

    assert error.code == errors.INVALID_ADDRESS
    assert error.message.startswith("sender is not a valid address: ")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ticket": "42\r\nBcc: spy@evil.example"},
        {"X-Ticket": "42\nBcc: spy@evil.example"},
        {"X-Ticket": "42\rBcc: spy@evil.example"},
        {"X-Ticket": "nul\x00"},
    ],
)
async def test_header_injection_in_a_value(refused: Any, headers: dict[str, str]) -> None:
    error = await refused(headers=headers)

    assert error.code == errors.INVALID_HEADER
    assert error.message == "headers: the value of 'X-Ticket' must be one line (no CR, LF or control characters)"
    assert "spy" not in error.message


@pytest.mark.parametrize("name", ["X-A\r\nBcc", "X Ticket", "X-Ticket:", "", "Zoë", "X" * 77])
async def test_invalid_header_names(refused: Any, name: str) -> None:
    error = await refused(headers={name: "1"})

    assert error.code == errors.INVALID_HEADER
    assert "is not a valid header name" in error.message
    assert "\r" not in error.message and "\n" not in error.message


@pytest.mark.parametrize(
    "name",
    [
        "From",
        "to",
        "CC",
        "Bcc",
        "Subject",
        "Reply-To",
        "Sender",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "content-disposition",
        "Resent-To",
        "Return-Path",
    ],
)
async def test_structural_headers_cannot_be_set(refused: Any, name: str) -> None:
    error = await refused(headers={name: "x"})

    assert error.code == errors.INVALID_HEADER
    assert error.message.startswith(f"headers: {name!r} is set by the connector and cannot be given")


@pytest.mark.parametrize(
    ("headers", "message"), [("X-A: 1", "headers must be an object"), ({"X-A": 1}, "must be a string")]
)
async def test_headers_of_the_wrong_type(refused: Any, headers: Any, message: str) -> None:
    error = await refused(headers=headers)

    assert error.code == errors.INVALID_HEADER
    assert message in error.message


@pytest.mark.parametrize("subject", ["Hello\r\nBcc: spy@evil.example", "Hello\nthere", 42])
async def test_an_invalid_subject(refused: Any, subject: Any) -> None:
    error = await refused(subject=subject)

    assert error.code == errors.INVALID_HEADER
    assert error.message.startswith("subject must be")


def _attachment(**fields: Any) -> dict[str, Any]:
    return {"filename": "a.bin", "content": base64.b64encode(b"data").decode(), **fields}


@pytest.mark.parametrize(
    ("attachment", "problem"),
    [
        (_attachment(content="not base64!"), "attachments[0] ('a.bin'): content is not valid base64"),
        (_attachment(content="QUJ"), "attachments[0] ('a.bin'): content is not valid base64"),
        (_attachment(content="ÄÖÜ"), "attachments[0] ('a.bin'): content is not valid base64"),
        (_attachment(content="data:text/plain;base64,@@@"), "attachments[0] ('a.bin'): content is not valid base64"),
        (
            _attachment(content="data:text/plain,hello"),
            "attachments[0] ('a.bin'): a data: URI must be base64-encoded (data:<type>;base64,<data>)",
        ),
        (
            _attachment(content="data:text/plain;base64"),
            "attachments[0] ('a.bin'): a data: URI must be base64-encoded (data:<type>;base64,<data>)",
        ),
        (_attachment(content=b"raw"), "attachments[0]: content must be a base64 string or a base64 data: URI"),
        (_attachment(filename=""), "attachments[0]: filename must be a non-empty string"),
        ({"content": "QQ=="}, "attachments[0]: filename must be a non-empty string"),
        (_attachment(filename="a\r\nb.txt"), "attachments[0]: filename must be one line of at most 255 characters"),
        (_attachment(filename="x" * 256), "attachments[0]: filename must be one line of at most 255 characters"),
        (
            _attachment(content_type="pdf"),
            "attachments[0] ('a.bin'): content_type must be of the form type/subtype, e.g. application/pdf",
        ),
        (
            _attachment(content_type="text/plain\r\nX-A: 1"),
            "attachments[0] ('a.bin'): content_type must be of the form type/subtype, e.g. application/pdf",
        ),
        (
            _attachment(content_type="multipart/mixed"),
            "attachments[0] ('a.bin'): multipart/* content cannot be attached as data (use application/octet-stream)",
        ),
        (_attachment(content_type=7), "attachments[0]: content_type must be a string"),
        (
            _attachment(size=3),
            "attachments[0]: unknown key(s) 'size': use filename, content, content_type",
        ),
        ("a.bin", "attachments[0]: must be an object {filename, content, content_type?}"),
    ],
)
async def test_invalid_attachment(refused: Any, attachment: Any, problem: str) -> None:
    error = await refused(attachments=[attachment])

    assert (error.code, error.message) == (errors.INVALID_ATTACHMENT, problem)


async def test_attachments_must_be_a_list(refused: Any) -> None:
    error = await refused(attachments="a.bin")

    assert (error.code, error.message) == (errors.INVALID_ATTACHMENT, "attachments must be a list of objects")


async def test_too_many_attachments(send: Any, plain_server: Any, plain_config: Any) -> None:
    config = plain_config(plain_server, EMAIL_MAX_ATTACHMENTS="2")
    await send(config, attachments=[_attachment(), _attachment()])
    with pytest.raises(CommandError) as caught:
        await send(config, attachments=[_attachment(), _attachment(), _attachment()])

    assert caught.value.code == errors.INVALID_ATTACHMENT
    assert caught.value.message == "3 attachments given, more than EMAIL_MAX_ATTACHMENTS allows (2)"
    assert len(plain_server.messages()) == 1


async def test_content_types(send: Any, config: dict[str, str], plain_server: Any) -> None:
    png = base64.b64encode(b"\x89PNG\r\n").decode()
    await send(
        config,
        attachments=[
            {"filename": "report.pdf", "content": png},  # guessed from the name
            {"filename": "archive.tar.gz", "content": png},  # compressed: no guess
            {"filename": "noext", "content": png},
            {"filename": "x.txt", "content": f"DATA:image/png;base64,{png}"},  # the data URI's type wins
            {"filename": "x.txt", "content": f"data:;base64,{png}"},  # a URI without a type: guessed
            {"filename": "x.bin", "content": f"data:image/png;base64,{png}", "content_type": "Image/GIF"},
            {"filename": "n.csv", "content": png, "content_type": 'text/csv; header=present; charset="utf-8"'},
            {"filename": "p.bin", "content": "data:application/octet-stream;base64,iVBO%52w0K"},  # percent-encoded
        ],
    )

    parts = list(plain_server.only_message().message.iter_attachments())
    assert [part.get_content_type() for part in parts] == [
        "application/pdf",
        "application/octet-stream",
        "application/octet-stream",
        "image/png",
        "text/plain",
        "image/gif",
        "text/csv",
        "application/octet-stream",
    ]
    assert parts[6].get_param("charset") == "utf-8" and parts[6].get_param("header") is None
    assert parts[7].get_content() == b"\x89PNG\r\n"


async def test_the_attachments_alone_exceed_the_size_limit(send: Any, plain_server: Any, plain_config: Any) -> None:
    config = plain_config(plain_server, EMAIL_MAX_MESSAGE_BYTES="3000")
    content = base64.b64encode(b"x" * 1500).decode()  # 2000 characters each
    with pytest.raises(CommandError) as caught:
        await send(config, attachments=[_attachment(content=content)] * 2 + [_attachment(content="not base64 at all!")])

    assert caught.value.code == errors.MESSAGE_TOO_LARGE  # refused before anything was decoded
    assert caught.value.message == (
        "the attachments alone take 4015 bytes encoded, more than EMAIL_MAX_MESSAGE_BYTES allows (3000)"
    )
    assert plain_server.messages() == []


async def test_the_encoded_message_exceeds_the_size_limit(send: Any, plain_server: Any, plain_config: Any) -> None:
    config = plain_config(plain_server, EMAIL_MAX_MESSAGE_BYTES="3000")
    await send(config, text="x" * 1000)
    with pytest.raises(CommandError) as caught:
        await send(config, text="é" * 2000)

    assert caught.value.code == errors.MESSAGE_TOO_LARGE
    assert caught.value.message.startswith("the message takes ")
    assert caught.value.message.endswith(" bytes encoded, more than EMAIL_MAX_MESSAGE_BYTES allows (3000)")
    assert len(plain_server.messages()) == 1
