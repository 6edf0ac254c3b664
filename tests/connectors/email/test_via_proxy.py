"""The email connector end to end: spiff-arena's request → a real proxy → a real SMTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from proxytest.protocol import validate_do_response

SPIFF_KEYS = {
    "spiff__process_instance_id": 42,
    "spiff__process_model_identifier": "group/model",
    "spiff__task_id": "a9b1c2",
    "spiff__task_data": {"order_id": 7},
    "spiff__callback_url": "http://127.0.0.1:1/callback",
}
HTTP_TIMEOUT = 30.0


@pytest.fixture
def proxy(start_proxy: Any, starttls_server: Any, starttls_config: Any) -> Iterator[httpx.Client]:
    """A client of a proxy whose email connector sends through the STARTTLS test server."""
    url = start_proxy(config=starttls_config(starttls_server))
    with httpx.Client(base_url=url, timeout=HTTP_TIMEOUT) as client:
        yield client


def do(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    response = client.post("/v1/do/email/SendEmail", json={**body, **SPIFF_KEYS})
    validate_do_response(response.status_code, response.json())
    return response


def test_the_catalog_lists_send_email(proxy: httpx.Client) -> None:
    catalog = proxy.get("/v1/commands").json()
    [entry] = [item for item in catalog if item["id"] == "email/SendEmail"]

    assert entry["description"].startswith("Send an email over SMTP")
    parameters = {parameter["id"]: parameter for parameter in entry["parameters"]}
    assert list(parameters) == [
        "to",
        "cc",
        "bcc",
        "subject",
        "text",
        "html",
        "sender",
        "reply_to",
        "headers",
        "attachments",
    ]
    assert [name for name, parameter in parameters.items() if parameter["required"]] == ["to"]
    assert all("writeOnly" not in parameter["schema"] for parameter in parameters.values())
    assert all(parameter.get("description") for parameter in parameters.values())
    assert parameters["subject"]["type"] == "str" and parameters["to"]["type"] == "any"
    items = parameters["attachments"]["schema"]["anyOf"][0]["items"]
    assert items["required"] == ["filename", "content"]


def test_a_message_is_delivered(proxy: httpx.Client, starttls_server: Any, account: Any) -> None:
    response = do(
        proxy,
        {
            "to": ["ops@example.com"],
            "bcc": "audit@example.com",
            "subject": "Order 7",
            "text": "shipped",
            "html": "<p>shipped</p>",
            "attachments": [{"filename": "note.txt", "content": "data:text/plain;base64,aGVsbG8="}],
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert body["error"] is None
    result = body["command_response"]["body"]
    assert result["accepted"] == ["ops@example.com", "audit@example.com"] and result["refused"] == {}
    received = starttls_server.only_message()
    assert received.tls and received.authenticated
    assert received.rcpt_tos == ("ops@example.com", "audit@example.com")
    message = received.message
    assert str(message["Message-ID"]) == result["message_id"]
    assert str(message["Subject"]) == "Order 7" and message["Bcc"] is None
    [attachment] = message.iter_attachments()
    assert attachment.get_content().replace("\r\n", "\n") == "hello"
    assert body["spiff__logs"] == [
        f"sent message {result['message_id']} via 127.0.0.1:{starttls_server.port} to 2 recipient(s) (0 refused)"
    ]
    assert account.password not in response.text


def test_a_refused_recipient_comes_back_in_the_result(proxy: httpx.Client, starttls_server: Any) -> None:
    body = do(proxy, {"to": ["ops@example.com", "refused-x@example.com"], "text": "hi"}).json()

    assert body["error"] is None
    assert body["command_response"]["body"]["refused"] == {"refused-x@example.com": "550 5.1.1 No such user here"}


def test_every_recipient_refused_is_an_error_with_the_replies(proxy: httpx.Client) -> None:
    body = do(proxy, {"to": "refused-x@example.com", "text": "hi"}).json()

    assert body["error"]["error_code"] == "RecipientsRefused"
    assert body["command_response"]["body"] == {"refused": {"refused-x@example.com": "550 5.1.1 No such user here"}}


def test_a_sender_not_allowed(proxy: httpx.Client, starttls_server: Any) -> None:
    response = do(proxy, {"to": "ops@example.com", "text": "hi", "sender": "ceo@example.com"})

    assert response.status_code == 200
    assert response.json()["error"] == {
        "error_code": "SenderNotAllowed",
        "message": "sender ceo@example.com is not allowed by EMAIL_ALLOWED_SENDERS",
    }
    assert starttls_server.messages() == []


def test_header_injection_is_refused(proxy: httpx.Client, starttls_server: Any) -> None:
    body = do(proxy, {"to": "ops@example.com", "text": "hi", "headers": {"X-A": "1\r\nBcc: spy@evil.example"}}).json()

    assert body["error"]["error_code"] == "InvalidHeader"
    assert starttls_server.messages() == []


def test_parameter_types_are_checked_by_the_proxy(proxy: httpx.Client) -> None:
    wrong_type = do(proxy, {"to": 42, "text": "hi"})
    missing = do(proxy, {"text": "hi"})

    assert (wrong_type.status_code, wrong_type.json()["error"]["error_code"]) == (400, "invalid_parameter")
    assert (missing.status_code, missing.json()["error"]["error_code"]) == (400, "missing_parameter")


def test_the_password_is_never_echoed(
    start_proxy: Any, starttls_server: Any, starttls_config: Any, account: Any
) -> None:
    wrong = "wr0ng-Pa55word-echoed"
    url = start_proxy(config=starttls_config(starttls_server, EMAIL_SMTP_PASSWORD=wrong))
    with httpx.Client(base_url=url, timeout=HTTP_TIMEOUT) as client:
        response = do(client, {"to": "ops@example.com", "text": "hi"})

    assert response.json()["error"]["error_code"] == "SMTPAuthenticationError"
    assert wrong not in response.text and account.password not in response.text
    assert "***" in response.json()["error"]["message"]  # the test server quotes the password it was given


def test_a_proxy_without_email_configuration(start_proxy: Any) -> None:
    with httpx.Client(base_url=start_proxy(), timeout=HTTP_TIMEOUT) as client:
        body = do(client, {"to": "ops@example.com", "text": "hi"}).json()

    assert body["error"]["error_code"] == "EmailNotConfigured"
    assert body["error"]["message"].startswith("EMAIL_SMTP_HOST is not set")
