"""Kubernetes mode: the proxy forwards the browser's OAuth requests to the connector workload.

The "workload" is a second proxy serving the SDK auth; the front proxy only knows it as a
RemoteAuthTarget (as the Kubernetes registry builds it) and holds no connector secrets.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from connector_proxy.auths import AuthEntry, RemoteAuthTarget
from connector_proxy.secret_files import MountedKey
from connector_proxy.settings import Settings
from proxytest.caller_tokens import mint, signing_key, write_policy
from proxytest.oauth_server import OAuthProvider
from proxytest.oauth_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    SPIFF_TOKEN,
    Browser,
    acme_connector,
    enable_debug_capture,
    error_of,
    oauth_settings,
    proxy_log_text,
    query_of,
    response_token,
    sdk_auths,
    start_url,
)
from proxytest.servers import free_port

WORKLOAD_KEY = "workload-api-key-5Tg2"


def remote_auth(endpoint: str, auth_id: str = "acme/OAuth") -> AuthEntry:
    entry = {"id": auth_id, "parameters": [], "kind": "oauth2"}
    return AuthEntry(auth_id, auth_id.split("/")[0], entry, RemoteAuthTarget(endpoint, WORKLOAD_KEY))


@pytest.fixture
def front_and_workload(provider: OAuthProvider, start: Any) -> tuple[str, str]:
    workload = start(oauth_settings(provider, api_key=WORKLOAD_KEY), sdk_auths(acme_connector(provider.url)))
    front = start(Settings(), [remote_auth(workload)])
    return front, workload


def test_flow_is_forwarded_with_the_front_proxys_callback_url(
    provider: OAuthProvider, front_and_workload: tuple[str, str], browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    enable_debug_capture(caplog)
    front, _ = front_and_workload
    # Only the front proxy's callback is registered: the workload's own URL would be refused.
    provider.clients[CLIENT_ID].redirect_uris.append(f"{front}/v1/auth/acme/OAuth/callback")

    authorize = browser.redirect(start_url(front, provider))
    assert query_of(authorize)["redirect_uri"] == f"{front}/v1/auth/acme/OAuth/callback"
    callback = browser.redirect(authorize)
    assert callback.startswith(f"{front}/v1/auth/acme/OAuth/callback?")
    final = browser.get(callback)
    assert final.status_code == 302
    assert final.headers["cache-control"] == "no-store"
    args = browser.get(final.headers["location"]).json()["args"]
    assert args["token"] == SPIFF_TOKEN
    token = response_token(args)
    assert token["access_token"] in provider.tokens

    logs = proxy_log_text(caplog)
    assert "/v1/auth/acme/OAuth/callback?[redacted]" in logs  # httpx's request line, query redacted
    for secret in (query_of(callback)["code"], token["access_token"], token["refresh_token"], CLIENT_SECRET):
        assert secret not in logs
    assert WORKLOAD_KEY not in logs


def test_forwarded_flow_is_bound_to_the_browser_too(
    provider: OAuthProvider, front_and_workload: tuple[str, str], browser: Browser
) -> None:
    front, _ = front_and_workload
    provider.clients[CLIENT_ID].redirect_uris.append(f"{front}/v1/auth/acme/OAuth/callback")
    callback = browser.to_callback(start_url(front, provider))
    assert [name for name in browser.http.cookies] == [next(iter(browser.http.cookies))]  # one flow cookie
    other = Browser()
    try:
        other.http.cookies.set("session", "spiff-arena-session")  # not the flow's: never forwarded
        refused = other.get(callback)
    finally:
        other.close()
    assert refused.status_code == 400
    assert error_of(refused)["error_code"] == "oauth_state_not_bound"
    final = browser.get(callback)
    assert final.status_code == 302, final.text
    assert "spiff_oauth_" in final.headers.get("set-cookie", ""), (
        final.headers and "Max-Age=0" in final.headers["set-cookie"]
    )


def test_forwarding_headers_put_the_callback_on_the_public_url(
    provider: OAuthProvider, front_and_workload: tuple[str, str], browser: Browser
) -> None:
    front, _ = front_and_workload
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "spiff.example.com", "X-Forwarded-Prefix": "/cp"}
    authorize = browser.redirect(start_url(front, provider), headers=headers)
    assert query_of(authorize)["redirect_uri"] == "https://spiff.example.com/cp/v1/auth/acme/OAuth/callback"


def test_front_public_url_wins(provider: OAuthProvider, start: Any, browser: Browser) -> None:
    workload = start(oauth_settings(provider), sdk_auths(acme_connector(provider.url)))
    front = start(Settings(public_url="https://proxy.example.org/connectors"), [remote_auth(workload)])
    authorize = browser.redirect(start_url(front, provider))
    assert query_of(authorize)["redirect_uri"] == "https://proxy.example.org/connectors/v1/auth/acme/OAuth/callback"


def test_workload_answers_pass_unchanged(
    provider: OAuthProvider, front_and_workload: tuple[str, str], browser: Browser
) -> None:
    front, workload = front_and_workload
    url = "/v1/auth/acme/OAuth?redirect_url=http://evil.example/cb?token=x"
    from_front, from_workload = browser.get(front + url), browser.get(workload + url)
    assert from_front.status_code == from_workload.status_code == 400
    assert from_front.content == from_workload.content
    assert error_of(from_front)["error_code"] == "oauth_redirect_not_allowed"


def test_unreachable_workload(start: Any, browser: Browser) -> None:
    front = start(Settings(), [remote_auth(f"http://127.0.0.1:{free_port()}")])
    for path in ("/v1/auth/acme/OAuth?redirect_url=http://x/cb", "/v1/auth/acme/OAuth/callback?code=c&state=s"):
        response = browser.get(front + path)
        assert response.status_code == 503
        assert error_of(response)["error_code"] == "connector_unavailable"


def test_a_workload_checking_its_callers_lets_the_forwarded_flow_in_with_the_token(
    provider: OAuthProvider, start: Any, browser: Browser, tmp_path: Path
) -> None:
    """The browser flow reaches a workload that requires the proxy's ServiceAccount token."""
    key = signing_key()
    now = int(time.time())
    token_file = tmp_path / "token"
    token_file.write_text(mint(key, iat=now, exp=now + 600))
    guarded = oauth_settings(provider, callers_file=write_policy(tmp_path / "callers.json", key))
    workload = start(guarded, sdk_auths(acme_connector(provider.url)))
    entry = {"id": "acme/OAuth", "parameters": [], "kind": "oauth2"}
    with_token = AuthEntry("acme/OAuth", "acme", entry, RemoteAuthTarget(workload, None, MountedKey(token_file)))
    without = AuthEntry("acme/OAuth", "acme", entry, RemoteAuthTarget(workload))
    front = start(Settings(), [with_token])
    stranger = start(Settings(), [without])
    provider.clients[CLIENT_ID].redirect_uris.append(f"{front}/v1/auth/acme/OAuth/callback")

    authorize = browser.redirect(start_url(front, provider))
    assert authorize.startswith(provider.url)
    refused = browser.get(start_url(stranger, provider))
    assert refused.status_code == 401
