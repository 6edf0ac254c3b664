"""Waiting for the test PostgreSQL server: ready means accepting connections, not listening."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from postgres_server import postgres_server, wait_until_accepting

STARTING_UP = b"".join(
    [b"SFATAL\x00", b"VFATAL\x00", b"C57P03\x00", b"Mthe database system is starting up\x00", b"\x00"]
)


def _answer_starting_up(connection: socket.socket) -> None:
    """What PostgreSQL answers a client while it starts: no SSL, then a FATAL ErrorResponse."""
    with connection:
        connection.settimeout(5)
        while True:
            head = connection.recv(8, socket.MSG_WAITALL)
            if len(head) < 8:
                return
            length, code = struct.unpack("!II", head)
            connection.recv(length - 8, socket.MSG_WAITALL)
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not here
                connection.sendall(b"N")
                continue
            connection.sendall(b"E" + struct.pack("!I", len(STARTING_UP) + 4) + STARTING_UP)
            return


@contextmanager
def starting_server() -> Iterator[int]:
    """A port on 127.0.0.1 that listens and answers every client as a PostgreSQL still starting up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            _answer_starting_up(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_a_server_that_listens_but_is_still_starting_up_is_not_ready() -> None:
    with starting_server() as port:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=r"did not accept connections within 1\.0 s: .*starting up"):
            wait_until_accepting(f"host=127.0.0.1 port={port} dbname=postgres user=postgres password=x", timeout=1.0)
    assert time.monotonic() - started >= 1.0  # it kept trying for the whole time


def test_a_started_server_takes_queries_at_once() -> None:
    with postgres_server() as server:
        assert server.execute("SELECT 1") == [(1,)]
