"""The optional API key: protected endpoints answer 401 without it; liveness and docs stay open."""

from __future__ import annotations

import httpx
import pytest

from conftest import ProxyFactory
from connector_proxy.api_key import is_protected
from proxytest.protocol import validate_do_response

KEY = "k-0123456789abcdef"
HEADER = "Spiff-Connector-Proxy-Api-Key"


@pytest.fixture
def keyed(start_proxy: ProxyFactory) -> httpx.Client:
    return httpx.Client(base_url=start_proxy(api_key=KEY), timeout=30)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/commands"), ("GET", "/v1/auths"), ("POST", "/v1/do/http/GetRequestV2"), ("GET", "/v1/status")],
)
@pytest.mark.parametrize("presented", [None, "", "wrong", KEY + "x", KEY[:-1]])
def test_protected_endpoints_refuse_missing_or_wrong_key(
    keyed: httpx.Client, method: str, path: str, presented: str | None
) -> None:
    headers = {} if presented is None else {HEADER: presented}
    response = keyed.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    validate_do_response(401, body)
    assert KEY not in response.text


def test_right_key_passes(keyed: httpx.Client) -> None:
    response = keyed.get("/v1/commands", headers={HEADER: KEY})
    assert response.status_code == 200
    assert any(c["id"] == "http/GetRequestV2" for c in response.json())
    do = keyed.post("/v1/do/nope/Nope", headers={HEADER: KEY}, json={})
    assert do.status_code == 404


@pytest.mark.parametrize("path", ["/v1/liveness", "/liveness", "/v1/readiness", "/metrics", "/docs", "/openapi.json"])
def test_open_paths_need_no_key(keyed: httpx.Client, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_without_a_configured_key_everything_is_open(client: httpx.Client) -> None:
    assert client.get("/v1/commands").status_code == 200


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("/v1/commands", True),
        ("/v1/auths", True),
        ("/v1/do/a/b", True),
        ("/v1/status", True),
        ("/v1/auth/xero/OAuth", False),
        ("/v1/authsomething", False),
        ("/v1/liveness", False),
        ("/v1/readiness", False),
        ("/metrics", False),
        ("/docs", False),
    ],
)
def test_protected_path_rule(path: str, protected: bool) -> None:
    assert is_protected(path) is protected
