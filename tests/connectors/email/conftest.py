"""Fixtures for the email connector tests: real aiosmtpd SMTP servers on 127.0.0.1.

- ``starttls_server``: offers STARTTLS (required before MAIL) and AUTH (only over TLS, required);
- ``implicit_server``: TLS from the first byte, offers AUTH;
- ``plain_server``: neither STARTTLS nor AUTH, accepts messages of at most :data:`PLAIN_SIZE_LIMIT` bytes.

Every server records what it received (:class:`Received`), and its handler refuses
``MAIL FROM`` for :data:`BLOCKED_SENDER` (553), ``RCPT TO`` for addresses starting with
``refused`` (550), and ``DATA`` for a message with the header ``X-Test-Reject: yes`` (554). The
authenticator accepts only :data:`USERNAME`/:data:`PASSWORD`; its refusal quotes the password it
was given (a careless server), so the tests can show messages never carry it.

``scripted_smtp`` starts servers that answer from a script (replies no real server would give on
demand: a refusing greeting, a failing STARTTLS, a dropped connection). ``silent_port`` accepts
connections and never says anything; ``closed_port`` refuses them. The
certificate is self-signed for ``127.0.0.1`` and ``localhost``: trusted through ``EMAIL_SMTP_CA_FILE``,
by nothing else.
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
import socketserver
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from proxytest import servers
from proxytest.servers import free_port
from proxytest.tls import Certificate, self_signed_certificate
from spiff_connector_email.commands import send_email
from spiff_connector_sdk import Context, Result

USERNAME = "mailer"
PASSWORD = "s3cr3t-Pa55-7b1e"
SENDER = "workflow@example.com"
BLOCKED_SENDER = "blocked@example.com"
PLAIN_SIZE_LIMIT = 64 * 1024
CALL_TIMEOUT = 20.0  # seconds any one command call may take in these tests
SMTP_TIMEOUT = "5"  # EMAIL_SMTP_TIMEOUT of the configurations: every wait on a server is bounded


@dataclass(frozen=True)
class Received:
    """One message as a server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    authenticated: bool

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=email.policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """aiosmtpd handler hooks: record delivered messages, refuse the designated senders/recipients/messages."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if address == BLOCKED_SENDER:
            return "553 5.7.1 Sender address rejected: not permitted"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if b"\r\nX-Test-Reject: yes\r\n" in content:
            return "554 5.6.0 Message content rejected"
        record = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=content,
            tls=session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
            authenticated=bool(session.authenticated),
        )
        with self.lock:
            self.received.append(record)
        return "250 2.0.0 Message accepted for delivery"

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    """Accept :data:`USERNAME`/:data:`PASSWORD`; refuse anything else, echoing the password given."""
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    if auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode():
        return AuthResult(success=True)
    given = auth_data.password.decode(errors="replace")
    return AuthResult(success=False, handled=False, message=f"535 5.7.8 Bad credentials: {given} is wrong")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """The test servers' certificate."""
    return self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture(scope="session")
def other_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A certificate of no test server: trusting it trusts none of them."""
    return self_signed_certificate(tmp_path_factory.mktemp("other-tls"))


@dataclass(frozen=True)
class Account:
    """The test servers' account, and senders the configurations allow."""

    username: str = USERNAME
    password: str = PASSWORD
    sender: str = SENDER
    blocked_sender: str = BLOCKED_SENDER


@pytest.fixture
def account() -> Account:
    return Account()


@dataclass
class SmtpServer:
    """A running test server: where it listens and what it received."""

    port: int
    handler: RecordingHandler
    size_limit: int | None = None

    def messages(self) -> list[Received]:
        return self.handler.messages()

    def only_message(self) -> Received:
        messages = self.messages()
        assert len(messages) == 1, messages
        return messages[0]


@dataclass
class _Running:
    server: SmtpServer
    controller: Controller


def _start(**kwargs: Any) -> _Running:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="mail.test", ready_timeout=10, **kwargs
    )
    controller.start()
    return _Running(SmtpServer(port=port, handler=handler, size_limit=kwargs.get("data_size_limit")), controller)


@contextmanager
def _serving(**kwargs: Any) -> Iterator[_Running]:
    running = _start(**kwargs)
    try:
        yield running
    finally:
        running.controller.stop()


@pytest.fixture(scope="session")
def _starttls(certificate: Certificate) -> Iterator[_Running]:
    with _serving(
        tls_context=certificate.server_context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def _implicit(certificate: Certificate) -> Iterator[_Running]:
    # aiosmtpd counts only STARTTLS as TLS for AUTH: over implicit TLS it offers AUTH when not told to require TLS
    with _serving(
        ssl_context=certificate.server_context, auth_require_tls=False, authenticator=authenticator
    ) as running:
        yield running


@pytest.fixture(scope="session")
def _plain() -> Iterator[_Running]:
    with _serving(data_size_limit=PLAIN_SIZE_LIMIT) as running:
        yield running


@pytest.fixture
def starttls_server(_starttls: _Running) -> SmtpServer:
    _starttls.server.handler.reset()
    return _starttls.server


@pytest.fixture
def implicit_server(_implicit: _Running) -> SmtpServer:
    _implicit.server.handler.reset()
    return _implicit.server


@pytest.fixture
def plain_server(_plain: _Running) -> SmtpServer:
    _plain.server.handler.reset()
    return _plain.server


ConfigFactory = Callable[..., dict[str, str]]


def _port(server: SmtpServer | int) -> int:
    return server if isinstance(server, int) else server.port


def _starttls_config(server: SmtpServer | int, certificate: Certificate, **overrides: str) -> dict[str, str]:
    return {
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(_port(server)),
        "EMAIL_SMTP_TLS": "starttls",
        "EMAIL_SMTP_USERNAME": USERNAME,
        "EMAIL_SMTP_PASSWORD": PASSWORD,
        "EMAIL_SMTP_CA_FILE": str(certificate.cert_file),
        "EMAIL_SMTP_TIMEOUT": SMTP_TIMEOUT,
        "EMAIL_DEFAULT_SENDER": f"Workflow <{SENDER}>",
        "EMAIL_ALLOWED_SENDERS": f"{SENDER}, @allowed.example, {BLOCKED_SENDER}",
        **overrides,
    }


def _plain_config(server: SmtpServer | int, **overrides: str) -> dict[str, str]:
    return {
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(_port(server)),
        "EMAIL_SMTP_TLS": "none",
        "EMAIL_SMTP_TIMEOUT": SMTP_TIMEOUT,
        "EMAIL_DEFAULT_SENDER": SENDER,
        "EMAIL_ALLOWED_SENDERS": f"{SENDER}, @allowed.example, {BLOCKED_SENDER}",
        **overrides,
    }


@pytest.fixture
def starttls_config(certificate: Certificate) -> ConfigFactory:
    """``(server or port, **overrides)``: STARTTLS mode, the account, trusting the test servers' certificate."""
    return lambda server, **overrides: _starttls_config(server, certificate, **overrides)


@pytest.fixture
def plain_config() -> ConfigFactory:
    """``(server or port, **overrides)``: a config without credentials, TLS ``none``."""
    return _plain_config


async def _send(config: dict[str, str], **params: Any) -> tuple[Result, Context]:
    ctx = Context(config=config)
    params.setdefault("to", ["ops@example.com"])
    params.setdefault("text", "hello")
    result = await asyncio.wait_for(send_email(ctx, **params), CALL_TIMEOUT)
    return result, ctx


@pytest.fixture
def send() -> Callable[..., Awaitable[tuple[Result, Context]]]:
    """``await send(config, **params)``: call SendEmail directly (``to`` and ``text`` have defaults),
    bounded by :data:`CALL_TIMEOUT`; returns the result and the context (its ``logs``)."""
    return _send


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    return free_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never sends a byte (no SMTP greeting)."""
    with servers.silent_port() as port:
        yield port


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: new connections never complete (connect timeouts)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):  # Linux queues backlog + 1 connections; the first that hangs proves it full
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.settimeout(0.2)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.fail("the accept queue never filled up")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


SCRIPT_DEFAULTS: dict[str, str | None] = {
    "greeting": "220 scripted.test ESMTP",
    "EHLO": "250-scripted.test\r\n250 8BITMIME",
    "HELO": "250 scripted.test",
    "AUTH": "235 2.7.0 Authentication successful",
    "MAIL": "250 2.1.0 OK",
    "RCPT": "250 2.1.5 OK",
    "DATA": "354 End data with <CR><LF>.<CR><LF>",
    "data-end": "250 2.0.0 Queued",
    "RSET": "250 2.0.0 OK",
    "QUIT": "221 2.0.0 Bye",
}


class ScriptedSmtpServer(socketserver.ThreadingTCPServer):
    """An SMTP server that answers each command with its script's reply (None: close the connection).

    Keys: ``greeting``, a command verb (``EHLO``, ``MAIL``, ...), and ``data-end`` (the reply to the
    message). ``lines`` records every command line received."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: dict[str, str | None]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script = {**SCRIPT_DEFAULTS, **script}
        self.lines: list[str] = []

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


class _ScriptedHandler(socketserver.StreamRequestHandler):
    timeout = 5  # a client that stops talking releases the thread
    server: ScriptedSmtpServer

    def _say(self, key: str) -> bool:
        reply = self.server.script.get(key, "502 5.5.2 Command not recognized")
        if reply is None:
            return False
        self.wfile.write(reply.encode() + b"\r\n")
        return True

    def _read_message(self) -> bool:
        line = self.rfile.readline()
        while line not in (b".\r\n", b""):
            line = self.rfile.readline()
        return bool(line) and self._say("data-end")

    def handle(self) -> None:
        if not self._say("greeting"):
            return
        while line := self.rfile.readline():
            text = line.decode(errors="replace").rstrip("\r\n")
            self.server.lines.append(text)
            verb = text.split(" ", 1)[0].upper()
            if not self._say(verb) or verb == "QUIT":
                return
            if verb == "DATA" and not self._read_message():
                return


@pytest.fixture
def scripted_smtp() -> Iterator[Callable[..., ScriptedSmtpServer]]:
    """``scripted_smtp(**script)``: start a :class:`ScriptedSmtpServer` (stopped after the test)."""
    servers: list[tuple[ScriptedSmtpServer, threading.Thread]] = []

    def start(**script: str | None) -> ScriptedSmtpServer:
        server = ScriptedSmtpServer({key.replace("_", "-"): value for key, value in script.items()})
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
