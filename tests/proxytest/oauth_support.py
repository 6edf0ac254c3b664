"""Proxies with OAuth auths for the tests, and a browser that follows redirects by hand."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connector_proxy.app import create_app
from connector_proxy.auths import AuthEntry
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from proxytest.oauth_server import OAuthProvider
from proxytest.servers import serve_in_thread
from spiff_connector_sdk import Connector

STATE_SECRET = "test-state-secret-3b1f9c0e-please-rotate"
CLIENT_ID = "acme-client-id"
CLIENT_SECRET = "acme-client-secret-7Qz9XvPLm2"
EXAMPLE_CLIENT_ID = "example-client-id"
EXAMPLE_CLIENT_SECRET = "example-client-secret-Hk4Rt8Wq1"
SPIFF_TOKEN = "eyJhbGciOi.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"  # spiff-arena's session JWT in redirect_url


def acme_connector(provider_url: str, **overrides: Any) -> Connector:
    """An SDK connector with two OAuth2 auths against the test provider."""
    connector = Connector("acme", description="Acme API")
    settings: dict[str, Any] = {
        "client_id_key": "ACME_CLIENT_ID",
        "client_secret_key": "ACME_CLIENT_SECRET",
        "authorization_url": f"{provider_url}/authorize",
        "token_url": f"{provider_url}/token",
        "scopes": ["openid", "offline_access", "read"],
        "description": "Connect an Acme account",
        **overrides,
    }
    connector.oauth2("OAuth", **settings)
    connector.oauth2("Other", **settings)
    return connector


def acme_config() -> dict[str, str]:
    return {"ACME_CLIENT_ID": CLIENT_ID, "ACME_CLIENT_SECRET": CLIENT_SECRET}


def sdk_auths(connector: Connector) -> list[AuthEntry]:
    loaded = load_sdk_connector(connector)
    assert loaded.problems == []
    return loaded.auths


def build_app(settings: Settings, auths: Iterable[AuthEntry], connectors: tuple[Connector, ...] = ()) -> Any:
    """The proxy app serving ``auths`` and the commands of ``connectors``."""
    commands = [c for connector in connectors for c in load_sdk_connector(connector).commands]
    embedded = EmbeddedConnectors(registry=Registry.build(commands, list(auths)), connectors=connectors)
    return create_app(settings, embedded=embedded)


@contextmanager
def proxies() -> Iterator[Any]:
    """A factory serving proxy apps on 127.0.0.1 until the block ends."""
    with ExitStack() as stack:

        def start(settings: Settings, auths: Iterable[AuthEntry], connectors: tuple[Connector, ...] = ()) -> str:
            return stack.enter_context(serve_in_thread(build_app(settings, auths, connectors)))

        yield start


def oauth_settings(provider: OAuthProvider, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "config": acme_config(),
        "oauth_state_secret": STATE_SECRET,
        "oauth_redirect_allowlist": [f"{provider.url}/v1.0/authentication_callback"],
    }
    values.update(overrides)
    return Settings(**values)


def spiff_redirect_url(provider: OAuthProvider, auth_id: str = "acme/OAuth") -> str:
    """The redirect_url spiff-arena builds (its backend is played by the provider's server)."""
    return f"{provider.url}/v1.0/authentication_callback/{auth_id}?token={SPIFF_TOKEN}"


def start_url(proxy: str, provider: OAuthProvider, auth_id: str = "acme/OAuth") -> str:
    """The exact, un-encoded link spiff-arena's UI sends the browser to."""
    return f"{proxy}/v1/auth/{auth_id}?redirect_url={spiff_redirect_url(provider, auth_id)}"


def error_of(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"error_code", "message"}
    error: dict[str, str] = body["error"]
    return error


class Browser:
    """An httpx client that never follows redirects by itself."""

    def __init__(self) -> None:
        self.http = httpx.Client(follow_redirects=False, timeout=20)

    def close(self) -> None:
        self.http.close()

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, **kwargs)

    def redirect(self, url: str, **kwargs: Any) -> str:
        response = self.get(url, **kwargs)
        assert response.status_code == 302, (response.status_code, response.text)
        location: str = response.headers["location"]
        return location

    def to_callback(self, proxy_start: str) -> str:
        """Start the flow and sign in at the provider; the provider's redirect to the callback."""
        authorize = self.redirect(proxy_start)
        return self.redirect(authorize)

    def full_flow(self, proxy_start: str) -> dict[str, Any]:
        """The whole flow; what spiff-arena's backend reads from its callback's query."""
        final = self.redirect(self.to_callback(proxy_start))
        landed = self.get(final)
        assert landed.status_code == 200
        args: dict[str, Any] = landed.json()["args"]
        return args


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def response_token(args: dict[str, Any]) -> dict[str, Any]:
    token: dict[str, Any] = json.loads(args["response"])
    return token


def proxy_log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record the proxies emitted (their server and pool threads, their loggers), with
    all attributes; the test provider's and the test browser's own records are left out."""
    records = [
        r
        for r in caplog.records
        if r.name.startswith("connector_proxy") or r.threadName.startswith(("test-uvicorn", "connector"))
    ]
    return "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in records)


def enable_debug_capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
