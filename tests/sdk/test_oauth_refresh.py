"""The SDK's token refresh helper against the real authorization server, and a command that
returns the refreshed token set through /v1/do as legacy connectors do."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import pytest

from connector_proxy.settings import Settings
from proxytest.oauth_server import OAuthProvider
from proxytest.oauth_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    Browser,
    acme_config,
    acme_connector,
    enable_debug_capture,
    oauth_settings,
    proxies,
    proxy_log_text,
    response_token,
    sdk_auths,
    start_url,
)
from proxytest.protocol import validate_do_response
from spiff_connector_sdk import CommandError, Connector, Context, Param, Result
from spiff_connector_sdk.oauth import load_token, refresh_if_expired, refresh_token, token_expired


@pytest.fixture
def token_set(provider: OAuthProvider) -> dict[str, Any]:
    """A token set obtained through the proxy's browser flow, as spiff-arena stores it."""
    with proxies() as start:
        proxy = start(oauth_settings(provider), sdk_auths(acme_connector(provider.url)))
        provider.clients[CLIENT_ID].redirect_uris.append(f"{proxy}/v1/auth/acme/OAuth/callback")
        browser = Browser()
        try:
            return response_token(browser.full_flow(start_url(proxy, provider)))
        finally:
            browser.close()


async def test_refresh_if_expired(provider: OAuthProvider, token_set: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "token_url": f"{provider.url}/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert token_expired(token_set) is False
    assert await refresh_if_expired(token_set, **kwargs) is None

    expired = {**token_set, "expires_at": int(time.time()) - 5}
    refreshed = await refresh_if_expired(json.dumps(expired), **kwargs)  # the stored secret is a JSON string
    assert refreshed is not None
    assert refreshed["access_token"] != token_set["access_token"]
    assert refreshed["refresh_token"] != token_set["refresh_token"]  # the provider rotates refresh tokens
    assert refreshed["expires_at"] >= int(time.time()) + 3500
    assert provider.token_requests[-1]["grant_type"] == "refresh_token"
    assert provider.tokens[token_set["access_token"]].revoked

    # The rotated-out refresh token no longer works; the error carries no token text.
    with pytest.raises(CommandError) as failed:
        await refresh_token(expired, **kwargs)
    assert failed.value.code == "oauth_refresh_failed"
    assert "invalid_grant" in failed.value.message
    assert token_set["refresh_token"] not in failed.value.message


async def test_refresh_errors_are_command_errors(provider: OAuthProvider) -> None:
    kwargs: dict[str, Any] = {"token_url": f"{provider.url}/token", "client_id": CLIENT_ID, "client_secret": "wrong"}
    with pytest.raises(CommandError) as failed:
        await refresh_token({"access_token": "a", "refresh_token": "r-1234567890"}, **kwargs)
    assert failed.value.code == "oauth_refresh_failed" and "wrong" not in failed.value.message
    with pytest.raises(CommandError) as failed:
        await refresh_token({"access_token": "a"}, **kwargs)
    assert failed.value.code == "oauth_refresh_failed" and "refresh_token" in failed.value.message
    with pytest.raises(CommandError) as failed:
        load_token("{not json")
    assert failed.value.code == "oauth_invalid_token"
    assert token_expired({"access_token": "a"}) is None
    assert token_expired({"expires_at": str(int(time.time()) + 30)}, leeway=60) is True


def _refreshing_connector(provider_url: str) -> Connector:
    connector = Connector("acmeapi")

    @connector.command("WhoAmI")
    async def who_am_i(ctx: Context, access_token: Annotated[str, Param("Token set (secret)", secret=True)]) -> Result:
        """Call the API with a token set, refreshing it first when it expired."""
        token = load_token(access_token)
        refreshed = await refresh_if_expired(
            token,
            token_url=f"{provider_url}/token",
            client_id=ctx.config["ACME_CLIENT_ID"],
            client_secret=ctx.config["ACME_CLIENT_SECRET"],
        )
        body: dict[str, Any] = {"user": "alice"}
        if refreshed is not None:
            body["refreshed_token_set"] = refreshed
        return Result(body=body)

    return connector


def test_a_command_returns_the_refreshed_token_set(
    provider: OAuthProvider, token_set: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    enable_debug_capture(caplog)
    connector = _refreshing_connector(provider.url)
    with proxies() as start:
        proxy = start(Settings(config=acme_config()), [], (connector,))
        expired = json.dumps({**token_set, "expires_at": int(time.time()) - 5})
        response = httpx.post(f"{proxy}/v1/do/acmeapi/WhoAmI", json={"access_token": expired}, timeout=20)
        assert response.status_code == 200
        envelope = response.json()
        validate_do_response(200, envelope)
        new_set = envelope["command_response"]["body"]["refreshed_token_set"]
        assert new_set["access_token"] in provider.tokens
        assert new_set["access_token"] != token_set["access_token"]
        fresh = httpx.post(f"{proxy}/v1/do/acmeapi/WhoAmI", json={"access_token": json.dumps(new_set)}, timeout=20)
        assert "refreshed_token_set" not in fresh.json()["command_response"]["body"]
    logs = proxy_log_text(caplog)
    for secret in (CLIENT_SECRET, token_set["refresh_token"], new_set["access_token"], new_set["refresh_token"]):
        assert secret not in logs
