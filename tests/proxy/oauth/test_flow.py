"""The browser OAuth2 flow against a real authorization server (authlib, PKCE required).

The browser is an httpx client following redirects by hand; spiff-arena's backend is played by
the provider's server, which echoes the query it receives as Flask reads it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from connector_proxy.loading.community import load_community_package
from connector_proxy.loading.embedded import add_connector_paths
from connector_proxy.oauth.state import StateCodec
from proxytest.oauth_server import OAuthProvider
from proxytest.oauth_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    EXAMPLE_CLIENT_ID,
    EXAMPLE_CLIENT_SECRET,
    SPIFF_TOKEN,
    STATE_SECRET,
    Browser,
    acme_config,
    acme_connector,
    enable_debug_capture,
    error_of,
    oauth_settings,
    proxy_log_text,
    query_of,
    response_token,
    sdk_auths,
    spiff_redirect_url,
    start_url,
)
from proxytest.protocol import validate


@pytest.fixture
def acme_proxy(provider: OAuthProvider, start: Any) -> str:
    url: str = start(oauth_settings(provider), sdk_auths(acme_connector(provider.url)))
    for auth in ("OAuth", "Other"):
        provider.clients[CLIENT_ID].redirect_uris.append(f"{url}/v1/auth/acme/{auth}/callback")
    return url


def test_sdk_auth_full_flow(
    provider: OAuthProvider, acme_proxy: str, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    enable_debug_capture(caplog)
    authorize = browser.redirect(start_url(acme_proxy, provider))
    assert authorize.startswith(f"{provider.url}/authorize?")
    sent = query_of(authorize)
    assert sent["client_id"] == CLIENT_ID
    assert sent["redirect_uri"] == f"{acme_proxy}/v1/auth/acme/OAuth/callback"
    assert sent["scope"] == "openid offline_access read"
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    # The state is sealed: neither the redirect URL nor spiff-arena's token can be read from it.
    assert SPIFF_TOKEN not in sent["state"] and "authentication_callback" not in sent["state"]

    callback = browser.redirect(authorize)
    assert callback.startswith(f"{acme_proxy}/v1/auth/acme/OAuth/callback?")
    code = query_of(callback)["code"]
    final = browser.get(callback)
    assert final.status_code == 302
    assert final.headers["cache-control"] == "no-store"
    assert final.headers["referrer-policy"] == "no-referrer"
    location = final.headers["location"]
    assert location.startswith(f"{spiff_redirect_url(provider)}&response=")

    args = browser.get(location).json()["args"]
    assert args["token"] == SPIFF_TOKEN  # spiff-arena's own query survives untouched
    token = response_token(args)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600 and token["expires_at"] >= int(time.time()) + 3500
    assert token["scope"] == "openid offline_access read"
    assert token["access_token"] in provider.tokens
    assert token["refresh_token"] == provider.tokens[token["access_token"]].refresh_token

    exchange = provider.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["basic_auth"] is True  # client_secret_basic by default for SDK auths
    assert "code_verifier" in exchange["form_keys"] and "client_secret" not in exchange["form_keys"]
    assert exchange["redirect_uri"] == f"{acme_proxy}/v1/auth/acme/OAuth/callback"

    logs = proxy_log_text(caplog)
    assert "oauth flow completed" in logs
    for secret in (CLIENT_SECRET, code, token["access_token"], token["refresh_token"], SPIFF_TOKEN, sent["state"]):
        assert secret not in logs


def test_community_auth_class_full_flow(
    provider: OAuthProvider, start: Any, browser: Browser, community_site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fixture's reference-style class: OAuth().app_description(config), flask-oauthlib keys."""
    enable_debug_capture(caplog)
    add_connector_paths([community_site])
    loaded = load_community_package("connector_example")
    config = {
        "EXAMPLE_AUTHORIZE_URL": f"{provider.url}/authorize",
        "EXAMPLE_TOKEN_URL": f"{provider.url}/token",
        "EXAMPLE_CLIENT_ID": EXAMPLE_CLIENT_ID,
        "EXAMPLE_CLIENT_SECRET": EXAMPLE_CLIENT_SECRET,
    }
    proxy = start(oauth_settings(provider, config=config), loaded.auths)
    provider.clients[EXAMPLE_CLIENT_ID].redirect_uris.append(f"{proxy}/v1/auth/example/OAuth/callback")

    authorize = browser.redirect(start_url(proxy, provider, "example/OAuth"))
    sent = query_of(authorize)
    assert sent["scope"] == "openid offline_access"  # from request_token_params
    assert sent["code_challenge_method"] == "S256"
    final = browser.redirect(browser.redirect(authorize))
    args = browser.get(final).json()["args"]
    assert (args["token"], args.keys() >= {"response"}) == (SPIFF_TOKEN, True)
    token = response_token(args)
    assert token["access_token"] in provider.tokens
    exchange = provider.token_requests[-1]
    # Like flask-oauthlib, the client credentials go in the body (client_secret_post).
    assert exchange["basic_auth"] is False
    assert {"client_id", "client_secret", "code_verifier"} <= set(exchange["form_keys"])
    logs = proxy_log_text(caplog)
    for secret in (EXAMPLE_CLIENT_SECRET, token["access_token"], token["refresh_token"]):
        assert secret not in logs


def test_the_unencoded_redirect_url_spiff_arena_produces(
    provider: OAuthProvider, acme_proxy: str, browser: Browser
) -> None:
    """`?redirect_url=http://backend/...?token=a.b.c&x=1`: everything after redirect_url= is the URL."""
    redirect = f"{provider.url}/v1.0/authentication_callback/acme/OAuth?token=a.b.c&x=1"
    args = browser.full_flow(f"{acme_proxy}/v1/auth/acme/OAuth?redirect_url={redirect}")
    assert args["token"] == "a.b.c" and args["x"] == "1"
    assert "access_token" in response_token(args)
    # A redirect URL without a query of its own gets "?response=".
    plain = f"{provider.url}/v1.0/authentication_callback/acme/OAuth"
    callback = browser.to_callback(f"{acme_proxy}/v1/auth/acme/OAuth?redirect_url={plain}")
    assert browser.redirect(callback).startswith(f"{plain}?response=%7B%22")


def test_an_encoded_redirect_url_works_too(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    from urllib.parse import quote

    redirect = quote(spiff_redirect_url(provider), safe="")
    args = browser.full_flow(f"{acme_proxy}/v1/auth/acme/OAuth?redirect_url={redirect}&ignored=1")
    assert args["token"] == SPIFF_TOKEN and "access_token" in response_token(args)


def test_auths_catalog_lists_sdk_oauth2_metadata(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    catalog = browser.get(f"{acme_proxy}/v1/auths").json()
    validate("CommandCatalog", catalog)
    entry = next(a for a in catalog if a["id"] == "acme/OAuth")
    assert entry == {
        "id": "acme/OAuth",
        "parameters": [],
        "description": "Connect an Acme account",
        "kind": "oauth2",
        "flow": "authorization_code",
        "pkce": True,
        "scopes": ["openid", "offline_access", "read"],
        "authorization_url": f"{provider.url}/authorize",
    }
    assert "ACME_CLIENT" not in str(catalog)


@pytest.mark.parametrize(
    "redirect",
    [
        "http://evil.example/v1.0/authentication_callback/acme/OAuth?token=t0p",
        "{provider}/v1.0/authentication_callbackX/acme/OAuth?token=t0p",
        "{provider}/v1.0/other?token=t0p",
        "{provider}@evil.example/v1.0/authentication_callback/acme/OAuth?token=t0p",
        "{provider}/v1.0/authentication_callback/../../admin?token=t0p",
        "https://{host}/v1.0/authentication_callback/acme/OAuth?token=t0p",
        "javascript:alert(1)//{host}/v1.0/authentication_callback",
    ],
)
def test_refused_redirect(provider: OAuthProvider, acme_proxy: str, browser: Browser, redirect: str) -> None:
    url = redirect.format(provider=provider.url, host=provider.url.removeprefix("http://"))
    response = browser.get(f"{acme_proxy}/v1/auth/acme/OAuth?redirect_url={url}")
    assert response.status_code == 400
    error = error_of(response)
    assert error["error_code"] == "oauth_redirect_not_allowed"
    assert "t0p" not in error["message"]
    assert provider.authorize_requests == []


def test_missing_redirect_url(acme_proxy: str, browser: Browser) -> None:
    response = browser.get(f"{acme_proxy}/v1/auth/acme/OAuth")
    assert response.status_code == 400
    assert error_of(response)["error_code"] == "oauth_redirect_not_allowed"


def test_refused_when_no_allowlist_is_configured(provider: OAuthProvider, start: Any, browser: Browser) -> None:
    proxy = start(oauth_settings(provider, oauth_redirect_allowlist=[]), sdk_auths(acme_connector(provider.url)))
    response = browser.get(start_url(proxy, provider))
    assert response.status_code == 400
    error = error_of(response)
    assert error["error_code"] == "oauth_redirect_not_allowed"
    assert "CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST" in error["message"]


def test_no_state_secret_is_a_configuration_error(provider: OAuthProvider, start: Any, browser: Browser) -> None:
    proxy = start(oauth_settings(provider, oauth_state_secret=None), sdk_auths(acme_connector(provider.url)))
    response = browser.get(start_url(proxy, provider))
    assert response.status_code == 500
    error = error_of(response)
    assert error["error_code"] == "oauth_not_configured"
    assert "CONNECTOR_PROXY_OAUTH_STATE_SECRET" in error["message"]


def test_missing_client_credentials_are_a_configuration_error(
    provider: OAuthProvider, start: Any, browser: Browser
) -> None:
    proxy = start(oauth_settings(provider, config={}), sdk_auths(acme_connector(provider.url)))
    response = browser.get(start_url(proxy, provider))
    assert response.status_code == 500
    error = error_of(response)
    assert error["error_code"] == "oauth_not_configured"
    assert "ACME_CLIENT_ID" in error["message"]


def test_unknown_auth(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    for path in ("/v1/auth/acme/Nope", "/v1/auth/acme/Nope/callback?code=c&state=s"):
        response = browser.get(f"{acme_proxy}{path}")
        assert response.status_code == 404
        assert error_of(response)["error_code"] == "auth_not_found"


def _with_state(callback: str, state: str) -> str:
    base, _, _ = callback.partition("?")
    code = query_of(callback)["code"]
    return f"{base}?code={code}&state={state}"


def test_tampered_state(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    callback = browser.to_callback(start_url(acme_proxy, provider))
    state = query_of(callback)["state"]
    middle = len(state) // 2
    tampered = state[:middle] + ("A" if state[middle] != "A" else "B") + state[middle + 1 :]
    for bad in (tampered, state[:-10], "not-a-state", ""):
        response = browser.get(_with_state(callback, bad))
        assert response.status_code == 400, bad
        assert error_of(response)["error_code"] == "oauth_state_invalid"
    forged = StateCodec("another-deployment-secret", 600).seal(
        auth_id="acme/OAuth", redirect_url=spiff_redirect_url(provider), callback_url="x", code_verifier="v" * 64
    )
    response = browser.get(_with_state(callback, forged))
    assert error_of(response)["error_code"] == "oauth_state_invalid"
    assert len(provider.token_requests) == 0  # nothing reached the token endpoint


def test_expired_state(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    callback = browser.to_callback(start_url(acme_proxy, provider))
    expired = StateCodec(STATE_SECRET, 30, clock=lambda: time.time() - 31).seal(
        auth_id="acme/OAuth",
        redirect_url=spiff_redirect_url(provider),
        callback_url=f"{acme_proxy}/v1/auth/acme/OAuth/callback",
        code_verifier="v" * 64,
    )
    response = browser.get(_with_state(callback, expired))
    assert response.status_code == 400
    error = error_of(response)
    assert error["error_code"] == "oauth_state_expired"
    assert "600 seconds" in error["message"]  # the receiving proxy's configured TTL
    assert provider.token_requests == []


def test_state_for_another_auth(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    callback = browser.to_callback(start_url(acme_proxy, provider))
    other = callback.replace("/v1/auth/acme/OAuth/callback", "/v1/auth/acme/Other/callback")
    response = browser.get(other)
    assert response.status_code == 400
    assert error_of(response)["error_code"] == "oauth_state_mismatch"
    assert provider.token_requests == []


def test_provider_error_does_not_call_back(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    provider.deny = True
    callback = browser.to_callback(start_url(acme_proxy, provider))
    assert query_of(callback)["error"] == "access_denied"
    response = browser.get(callback)
    assert response.status_code == 400
    error = error_of(response)
    assert error["error_code"] == "oauth_provider_error"
    assert "access_denied" in error["message"]
    assert "location" not in response.headers
    # A hostile error value is not echoed.
    response = browser.get(f"{acme_proxy}/v1/auth/acme/OAuth/callback?error=<script>x</script>")
    error = error_of(response)
    assert error["error_code"] == "oauth_provider_error" and "script" not in error["message"]


def test_token_endpoint_failure(
    provider: OAuthProvider, acme_proxy: str, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    enable_debug_capture(caplog)
    callback = browser.to_callback(start_url(acme_proxy, provider))
    provider.token_endpoint_down = True
    response = browser.get(callback)
    assert response.status_code == 502
    error = error_of(response)
    assert error["error_code"] == "oauth_token_exchange_failed"
    assert "database" not in error["message"]  # the provider's text is not passed on
    assert CLIENT_SECRET not in proxy_log_text(caplog)


def test_a_finished_flow_cannot_be_replayed(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    callback = browser.to_callback(start_url(acme_proxy, provider))
    flow_cookie = "; ".join(f"{k}={v}" for k, v in browser.http.cookies.items())
    assert flow_cookie.startswith("spiff_oauth_")
    assert browser.get(callback).status_code == 302
    assert not browser.http.cookies  # the callback cleared the flow's cookie
    again = browser.get(callback)
    assert error_of(again)["error_code"] == "oauth_state_not_bound"
    # Even replayed with the cookie kept by hand, the provider refuses a used code.
    replayed = browser.get(callback, headers={"Cookie": flow_cookie})
    assert replayed.status_code == 502
    error = error_of(replayed)
    assert error["error_code"] == "oauth_token_exchange_failed"
    assert "invalid_grant" in error["message"]
    assert query_of(callback)["code"] not in error["message"]


def test_a_flow_finishes_only_in_the_browser_that_started_it(
    provider: OAuthProvider, acme_proxy: str, browser: Browser
) -> None:
    """A sign-in link passed to somebody else cannot connect their account to the sender's session."""
    callback = browser.to_callback(start_url(acme_proxy, provider))
    other = Browser()
    try:
        refused = other.get(callback)
    finally:
        other.close()
    assert refused.status_code == 400
    assert error_of(refused)["error_code"] == "oauth_state_not_bound"
    assert "access_token" not in refused.text
    # Nothing was redeemed: the browser that started the flow still finishes it.
    final = browser.redirect(callback)
    assert "access_token" in response_token(browser.get(final).json()["args"])


def test_the_flow_cookie(provider: OAuthProvider, start: Any, browser: Browser) -> None:
    proxy = start(oauth_settings(provider, oauth_state_ttl=300), sdk_auths(acme_connector(provider.url)))
    answer = browser.get(start_url(proxy, provider))
    cookie = answer.headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in rest.split(";")[1:]}
    assert name.startswith("spiff_oauth_")
    assert attributes["max-age"] == "Max-Age=300" and attributes["path"] == "Path=/"
    assert attributes["samesite"].lower() == "samesite=lax" and "httponly" in attributes
    assert "secure" not in attributes  # plain http here
    https = browser.get(start_url(proxy, provider), headers={"X-Forwarded-Proto": "https"})
    assert "secure" in https.headers["set-cookie"].lower()


def test_browser_binding_can_be_turned_off(provider: OAuthProvider, start: Any, browser: Browser) -> None:
    proxy = start(oauth_settings(provider, oauth_bind_browser=False), sdk_auths(acme_connector(provider.url)))
    provider.clients[CLIENT_ID].redirect_uris.append(f"{proxy}/v1/auth/acme/OAuth/callback")
    answer = browser.get(start_url(proxy, provider))
    assert "set-cookie" not in answer.headers
    callback = browser.redirect(answer.headers["location"])
    other = Browser()
    try:
        final = other.redirect(callback)
    finally:
        other.close()
    assert final.startswith(spiff_redirect_url(provider).split("?")[0])


def test_pkce_verifier_travels_only_sealed(provider: OAuthProvider, acme_proxy: str, browser: Browser) -> None:
    """A code and state seen in transit cannot be redeemed elsewhere: the verifier is encrypted."""
    callback = browser.to_callback(start_url(acme_proxy, provider))
    params = query_of(callback)
    opened = StateCodec(STATE_SECRET, 600).open(params["state"])
    assert opened.code_verifier is not None and opened.code_verifier not in callback
    # Redeeming the code without the verifier fails at the provider.
    import httpx

    answer = httpx.post(
        f"{provider.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": f"{acme_proxy}/v1/auth/acme/OAuth/callback",
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_two_replicas_share_the_state_secret(provider: OAuthProvider, start: Any, browser: Browser) -> None:
    """Started on one replica, finished on another behind the same public URL."""
    public = "http://proxy.test"
    auths = sdk_auths(acme_connector(provider.url))
    first = start(oauth_settings(provider, public_url=public), auths)
    second = start(oauth_settings(provider, public_url=public + "/"), auths)
    other_secret = start(oauth_settings(provider, public_url=public, oauth_state_secret="another-secret-xyz"), auths)
    provider.clients[CLIENT_ID].redirect_uris.append(f"{public}/v1/auth/acme/OAuth/callback")

    callback = browser.to_callback(start_url(first, provider))
    assert callback.startswith(f"{public}/v1/auth/acme/OAuth/callback?")
    refused = browser.get(callback.replace(public, other_secret))
    assert error_of(refused)["error_code"] == "oauth_state_invalid"
    final = browser.redirect(callback.replace(public, second))
    args = browser.get(final).json()["args"]
    assert args["token"] == SPIFF_TOKEN and "access_token" in response_token(args)


def test_forwarded_headers_build_the_callback_url(provider: OAuthProvider, start: Any, browser: Browser) -> None:
    proxy = start(oauth_settings(provider), sdk_auths(acme_connector(provider.url)))
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "spiff.example.com, internal:8080",
        "X-Forwarded-Prefix": "/connector-proxy/",
    }
    authorize = browser.redirect(start_url(proxy, provider), headers=headers)
    assert (
        query_of(authorize)["redirect_uri"] == "https://spiff.example.com/connector-proxy/v1/auth/acme/OAuth/callback"
    )
    # Malformed forwarding headers are ignored.
    bad = {"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "evil/x", "X-Forwarded-Prefix": "//evil"}
    authorize = browser.redirect(start_url(proxy, provider), headers=bad)
    assert query_of(authorize)["redirect_uri"] == f"{proxy}/v1/auth/acme/OAuth/callback"


def test_flow_config_comes_from_the_proxy_config(provider: OAuthProvider, start: Any, browser: Browser) -> None:
    """authorize_params reach the provider; a public client (no secret) uses PKCE alone."""
    connector = acme_connector(provider.url, client_secret_key=None, authorize_params={"prompt": "consent"})
    provider.add_client("public-client", None, auth_methods=("none",))
    config = {**acme_config(), "ACME_CLIENT_ID": "public-client"}
    proxy = start(oauth_settings(provider, config=config), sdk_auths(connector))
    provider.clients["public-client"].redirect_uris.append(f"{proxy}/v1/auth/acme/OAuth/callback")
    authorize = browser.redirect(start_url(proxy, provider))
    assert query_of(authorize)["prompt"] == "consent"
    final = browser.redirect(browser.redirect(authorize))
    token = response_token(browser.get(final).json()["args"])
    assert token["access_token"] in provider.tokens
    exchange = provider.token_requests[-1]
    assert exchange["basic_auth"] is False and "client_secret" not in exchange["form_keys"]
