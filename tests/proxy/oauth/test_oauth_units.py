"""The pieces of the OAuth flow: redirect parsing and allow-list, state sealing, config mapping."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request

from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.logging_setup import RedactOAuthQuery
from connector_proxy.oauth.binding import flow_cookies
from connector_proxy.oauth.clients import catalog_metadata, description_client_config, sdk_client_config
from connector_proxy.oauth.errors import OAuthFlowError
from connector_proxy.oauth.redirects import check_redirect_url, public_base_url, raw_redirect_url, with_response
from connector_proxy.oauth.state import StateCodec
from spiff_connector_sdk import Connector

ALLOW = ["https://spiff.example.com/api/v1.0/authentication_callback", "http://localhost:7000/"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"redirect_url=http://b/v1.0/cb/x/A?token=a.b.c&x=1", "http://b/v1.0/cb/x/A?token=a.b.c&x=1"),
        (b"foo=1&redirect_url=http://b/cb?token=t&redirect_url=z", "http://b/cb?token=t&redirect_url=z"),
        (b"redirect_url=http%3A%2F%2Fb%2Fcb%3Ftoken%3Dt&other=1", "http://b/cb?token=t"),
        (b"xredirect_url=http://b/cb", None),
        (b"", None),
        (b"redirect_url=", ""),
    ],
)
def test_raw_redirect_url(query: bytes, expected: str | None) -> None:
    assert raw_redirect_url(query) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://spiff.example.com/api/v1.0/authentication_callback/xero/OAuth?token=a.b.c",
        "https://SPIFF.example.com:443/api/v1.0/authentication_callback",
        "http://localhost:7000/anything?x=1",
        "http://localhost:7000",
    ],
)
def test_allowed_redirects(url: str) -> None:
    assert check_redirect_url(url, ALLOW) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://spiff.example.com/api/v1.0/authentication_callbackX",
        "https://spiff.example.com/api/v1.0",
        "http://spiff.example.com/api/v1.0/authentication_callback",
        "https://spiff.example.com:8443/api/v1.0/authentication_callback",
        "https://spiff.example.com.evil.io/api/v1.0/authentication_callback",
        "https://evil.io\\@spiff.example.com/api/v1.0/authentication_callback",
        "https://u:p@spiff.example.com/api/v1.0/authentication_callback",
        "https://spiff.example.com/api/v1.0/authentication_callback/../../admin",
        "https://spiff.example.com/api/v1.0/authentication_callback/%2e%2e/%2E%2E/admin",
        "https://spiff.example.com/api/v1.0/authentication_callback/x y",
        "https://spiff.example.com/api/v1.0/authentication_callback/\u00e9",
        "http://localhost:7001/",
        "ftp://localhost:7000/",
        "//localhost:7000/",
        "http://[::1",
    ],
)
def test_refused_redirects(url: str) -> None:
    with pytest.raises(OAuthFlowError) as refused:
        check_redirect_url(url, ALLOW)
    assert (refused.value.status, refused.value.code) == (400, "oauth_redirect_not_allowed")


def test_refusal_message_hides_the_query() -> None:
    with pytest.raises(OAuthFlowError) as refused:
        check_redirect_url("https://evil.io/cb?token=secret-jwt", ALLOW)
    assert "secret-jwt" not in refused.value.message and "https://evil.io/cb" in refused.value.message


def test_an_unparsable_allowlist_entry_allows_nothing() -> None:
    """The settings refuse such an entry at start-up; the check itself never lets one match."""
    with pytest.raises(OAuthFlowError) as refused:
        check_redirect_url("https://x/cb", ["not a url", "https://x/cb?q=1"])
    assert (refused.value.status, refused.value.code) == (400, "oauth_redirect_not_allowed")


@pytest.mark.parametrize(
    ("base", "prefix"),
    [
        ("http://b/cb/x/A?token=t", "http://b/cb/x/A?token=t&"),
        ("http://b/cb/x/A", "http://b/cb/x/A?"),
        ("http://b/cb?", "http://b/cb?"),
    ],
)
def test_with_response(base: str, prefix: str) -> None:
    token = '{"access_token":"a+b/c=&d","scope":"x y"}'
    url = with_response(base, token)
    assert url.startswith(prefix + "response=")
    assert parse_qs(urlsplit(url).query)["response"] == [token]


def test_with_response_keeps_a_fragment_last_and_the_query_before_it() -> None:
    url = with_response("http://b/cb?token=t.u.v#section", '{"a":1}')
    parts = urlsplit(url)
    assert parts.fragment == "section"
    assert parse_qs(parts.query) == {"token": ["t.u.v"], "response": ['{"a":1}']}


def test_with_response_replaces_a_response_parameter_already_there() -> None:
    url = with_response("http://b/cb?response=forged&token=t&responsex=1", '{"a":1}')
    assert parse_qs(urlsplit(url).query) == {"token": ["t"], "responsex": ["1"], "response": ['{"a":1}']}


def _request(headers: dict[str, str], root_path: str = "", client: str = "127.0.0.1") -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("10.0.0.5", 7004),
        "client": (client, 50000),
        "path": "/v1/auth/x/A",
        "root_path": root_path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "10.0.0.5:7004", **headers}.items()],
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("headers", "root_path", "expected"),
    [
        ({}, "", "http://10.0.0.5:7004"),
        ({}, "/proxy", "http://10.0.0.5:7004/proxy"),
        ({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "p.example"}, "", "https://p.example"),
        ({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "p.example", "X-Forwarded-Port": "8443"}, "", "https://p.example:8443"),
        ({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "p.example", "X-Forwarded-Port": "443"}, "", "https://p.example"),
        ({"X-Forwarded-Prefix": "/a/b/"}, "/ignored", "http://10.0.0.5:7004/a/b"),
        ({"X-Forwarded-Prefix": "/"}, "", "http://10.0.0.5:7004"),
        ({"X-Forwarded-Host": "bad host", "X-Forwarded-Prefix": "no-slash"}, "", "http://10.0.0.5:7004"),
    ],
)  # fmt: skip
def test_public_base_url(headers: dict[str, str], root_path: str, expected: str) -> None:
    assert public_base_url(_request(headers, root_path), None) == expected


def test_public_url_setting_wins() -> None:
    assert public_base_url(_request({"X-Forwarded-Host": "x"}), "https://p.example/c/") == "https://p.example/c"


@pytest.mark.parametrize(
    ("client", "trusted", "derived"),
    [
        ("127.0.0.1", ["127.0.0.1", "::1"], True),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("10.1.2.3", ["*"], True),
        ("203.0.113.9", ["127.0.0.1", "::1"], False),
        ("203.0.113.9", [], False),
    ],
)
def test_headers_give_the_public_url_only_from_a_trusted_peer(client: str, trusted: list[str], derived: bool) -> None:
    request = _request({"X-Forwarded-Host": "evil.example", "Host": "evil.example"}, client=client)
    if derived:
        assert public_base_url(request, None, trusted) == "http://evil.example"
        return
    with pytest.raises(OAuthFlowError) as refused:
        public_base_url(request, None, trusted)
    assert refused.value.code.value == "oauth_not_configured" and "CONNECTOR_PROXY_PUBLIC_URL" in refused.value.message
    assert public_base_url(request, "https://connectors.example.com", trusted) == "https://connectors.example.com"


def test_state_roundtrip_and_failures() -> None:
    now = [1_000_000.0]
    codec = StateCodec("s3cret-value", 60, clock=lambda: now[0])
    sealed = codec.seal(
        auth_id="x/A", redirect_url="http://b/cb?token=t", callback_url="http://p/cb", code_verifier="v" * 64
    )
    assert "token" not in sealed and "v" * 10 not in sealed
    state = codec.open(sealed)
    assert (state.auth_id, state.redirect_url, state.code_verifier) == ("x/A", "http://b/cb?token=t", "v" * 64)
    assert "v" * 64 not in repr(state) and "token=t" not in repr(state)
    assert codec.seal(auth_id="x/A", redirect_url="r", callback_url="c", code_verifier=None) != codec.seal(
        auth_id="x/A", redirect_url="r", callback_url="c", code_verifier=None
    )  # a fresh nonce (and IV) every time
    for bad in ("", "x" * 9000, sealed + "x", "\u00e9" + sealed):
        with pytest.raises(OAuthFlowError) as refused:
            codec.open(bad)
        assert refused.value.code == "oauth_state_invalid"
    with pytest.raises(OAuthFlowError) as refused:
        StateCodec("other-secret", 60).open(sealed)
    assert refused.value.code == "oauth_state_invalid"
    now[0] += 61
    with pytest.raises(OAuthFlowError) as refused:
        codec.open(sealed)
    assert refused.value.code == "oauth_state_expired"


def test_reference_description_mapping() -> None:
    description = {
        "name": "example",
        "base_url": "https://api.example.com/v2/",
        "authorize_url": "/oauth/authorize",
        "access_token_url": "https://login.example.com/token",
        "consumer_key": "cid",
        "consumer_secret": "csecret",
        "request_token_params": {"scope": ["a", "b"], "access_type": "offline", "state": "ignored"},
        "access_token_params": {"resource": "r"},
    }
    client = description_client_config("example/OAuth", description, {})
    assert client.authorization_url == "https://api.example.com/oauth/authorize"
    assert client.token_url == "https://login.example.com/token"
    assert (client.client_id, client.client_secret) == ("cid", "csecret")
    assert client.scope == "a b"
    assert dict(client.authorize_params) == {"access_type": "offline"}
    assert dict(client.token_params) == {"resource": "r"}
    assert client.token_endpoint_auth_method == "client_secret_post"
    assert "csecret" not in repr(client) and "cid" not in repr(client)
    oauth2_names = {"client_id": "i", "authorization_url": "https://a/x", "token_url": "https://a/t", "scope": "s"}
    assert description_client_config("e/O", oauth2_names, {}).scope == "s"


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ({"request_token_url": "https://x/rt", "consumer_key": "k"}, "oauth_not_supported"),
        ({"access_token_method": "GET", "consumer_key": "k"}, "oauth_not_supported"),
        ({"consumer_key": None, "consumer_secret": "csecret-value"}, "oauth_not_configured"),
        ({"consumer_key": "k", "authorize_url": "https://a/x"}, "oauth_not_configured"),
        (
            {"consumer_key": "k", "authorize_url": "ftp://a/x", "access_token_url": "https://a/t"},
            "oauth_not_configured",
        ),
        ("not a mapping", "oauth_not_configured"),
    ],
)
def test_reference_description_problems(description: Any, code: str) -> None:
    with pytest.raises(OAuthFlowError) as refused:
        description_client_config("example/OAuth", description, {})
    assert refused.value.code == code
    assert "csecret-value" not in refused.value.message


def test_sdk_oauth2_declarations() -> None:
    connector = Connector("c")
    spec = connector.oauth2(
        "OAuth", client_id_key="C_ID", authorization_url="https://a/auth", token_url="https://a/token", scopes=["x"]
    )
    client = sdk_client_config("c/OAuth", spec, {"C_ID": "id"})
    assert (client.client_secret, client.token_endpoint_auth_method, client.scope) == (None, "none", "x")
    assert catalog_metadata(spec)["scopes"] == ["x"]
    with pytest.raises(ValueError, match="token_url"):
        connector.oauth2("Bad", client_id_key="C_ID", authorization_url="https://a/auth", token_url="token")
    with pytest.raises(ValueError, match="token_endpoint_auth_method"):
        connector.oauth2(
            "Bad",
            client_id_key="C",
            authorization_url="https://a",
            token_url="https://a",
            token_endpoint_auth_method="x",
        )
    with pytest.raises(OAuthFlowError) as refused:
        sdk_client_config("c/OAuth", spec, {})
    assert refused.value.code == "oauth_not_configured" and "CONNECTOR_PROXY_CONFIG__C_ID" in refused.value.message
    # The untyped form keeps accepting anything; bad oauth2 settings are reported at load.
    connector.auth("Loose", client_id_key="C_ID")
    connector.auth("Key", kind="apikey", header="X-Key")
    loaded = load_sdk_connector(connector)
    assert loaded.problems == [
        "c/Loose has invalid oauth2 settings: oauth2 setting 'authorization_url' must be an http(s) URL"
    ]
    entries = {a.id: a.catalog_entry() for a in loaded.auths}
    assert entries["c/Key"] == {"id": "c/Key", "parameters": [], "kind": "apikey"}
    assert entries["c/Loose"] == {"id": "c/Loose", "parameters": [], "kind": "oauth2"}
    with pytest.raises(OAuthFlowError) as refused:
        sdk_client_config("c/Key", connector.auths["Key"], {})
    assert refused.value.code == "oauth_not_supported"


def test_access_log_lines_lose_the_query() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/v1/auth/x/A/callback?code=c0de&state=st4te", "1.1", 302), None,
    )  # fmt: skip
    assert RedactOAuthQuery().filter(record)
    assert "c0de" not in record.getMessage() and "/v1/auth/x/A/callback?[redacted]" in record.getMessage()
    other = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", ("/v1/commands?x=1",), None)
    RedactOAuthQuery().filter(other)
    assert other.getMessage() == "/v1/commands?x=1"


@pytest.mark.parametrize(
    ("header", "forwarded"),
    [
        (None, None),
        ("", None),
        ("session=abc; theme=dark", None),
        ("session=abc; spiff_oauth_AbC-1=nonce-value; other=1", "spiff_oauth_AbC-1=nonce-value"),
        ("spiff_oauth_a=1;spiff_oauth_b=2", "spiff_oauth_a=1; spiff_oauth_b=2"),
        ("garbage;;==;spiff_oauth_x=y", "spiff_oauth_x=y"),
    ],
)
def test_only_flow_cookies_are_forwarded(header: str | None, forwarded: str | None) -> None:
    assert flow_cookies(header) == forwarded
