"""Fixtures of the OAuth tests (registered in ``tests/conftest.py``): a real authorization server,
a browser, and a factory of proxies serving on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from proxytest.oauth_server import OAuthProvider, serve_oauth_provider
from proxytest.oauth_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    EXAMPLE_CLIENT_ID,
    EXAMPLE_CLIENT_SECRET,
    Browser,
    proxies,
)


@pytest.fixture
def provider() -> Iterator[OAuthProvider]:
    """The authorization server, with the clients of the ``acme`` (SDK) and ``example`` (community) auths."""
    with serve_oauth_provider() as server:
        server.add_client(CLIENT_ID, CLIENT_SECRET)
        server.add_client(EXAMPLE_CLIENT_ID, EXAMPLE_CLIENT_SECRET, auth_methods=("client_secret_post",))
        yield server


@pytest.fixture
def browser() -> Iterator[Browser]:
    client = Browser()
    yield client
    client.close()


@pytest.fixture
def start() -> Iterator[Any]:
    """``start(settings, auths, connectors=())`` serves a proxy until the test ends; returns its URL."""
    with proxies() as factory:
        yield factory
