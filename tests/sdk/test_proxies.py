"""The environment's proxy settings as httpx mounts, read as httpx reads them, and each URL's proxy as
httpx would route it (for clients that are not httpx)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from spiff_connector_sdk.proxies import ProxyRoutes, environment_proxies, proxy_for


@pytest.mark.parametrize(
    ("env", "patterns"),
    [
        ({}, {}),
        ({"HTTPS_PROXY": "proxy:3128"}, {"https://": "http://proxy:3128"}),
        (
            {"HTTP_PROXY": "http://p:1", "NO_PROXY": "localhost, 10.0.0.1,::1,.internal,svc.local"},
            {
                "http://": "http://p:1",
                "all://localhost": None,
                "all://10.0.0.1": None,
                "all://[::1]": None,
                "all://*.internal": None,
                "all://*svc.local": None,
            },
        ),
        ({"ALL_PROXY": "http://p:1", "NO_PROXY": "*"}, {}),
    ],
)
def test_environment_proxies(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], patterns: dict[str, Any]) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert environment_proxies() == patterns


class _Marked(httpx.AsyncBaseTransport):
    """A mount that only says which proxy it stands for."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy


def _httpx_choice(url: str) -> str | None:
    """Which proxy httpx itself routes ``url`` through with the environment's mounts (its private
    lookup, used here only as the oracle)."""
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        pattern: None if proxy is None else _Marked(proxy) for pattern, proxy in environment_proxies().items()
    }
    client = httpx.AsyncClient(mounts=mounts)
    chosen = client._transport_for_url(httpx.URL(url))
    return chosen.proxy if isinstance(chosen, _Marked) else None


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTP_PROXY": "http://p:1"},
        {"HTTPS_PROXY": "proxy:3128", "HTTP_PROXY": "http://p:1"},
        {
            "ALL_PROXY": "http://all:9",
            "HTTPS_PROXY": "http://s:2",
            "NO_PROXY": "localhost,10.0.0.1,::1,.internal,svc.local",
        },
        {"HTTP_PROXY": "http://p:1", "NO_PROXY": "http://only-http.example,example.org"},
        {"ALL_PROXY": "http://all:9", "NO_PROXY": "*"},
    ],
)
def test_proxy_for_routes_each_url_as_httpx_does(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    urls = [
        "http://example.com/x",
        "https://example.com:8443/x",
        "http://localhost:7004/v1/do",
        "https://10.0.0.1/",
        "http://[::1]:80/",
        "http://a.b.internal/",
        "http://internal/",
        "https://svc.local/",
        "https://x.svc.local/",
        "https://xsvc.local/",
        "http://only-http.example/",
        "https://only-http.example/",
        "https://example.org/",
        "https://api.example.org/",
    ]
    for url in urls:
        assert proxy_for(url) == _httpx_choice(url), url


def test_proxy_routes_look_each_key_up_once_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://egress.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    routes = ProxyRoutes(limit=3)
    assert routes.get("api", "http://api.example/a") == "http://egress.example:3128"
    assert routes.get("internal", "http://internal.example/b") is None
    monkeypatch.delenv("HTTP_PROXY")
    assert routes.get("api", "http://api.example/c") == "http://egress.example:3128"  # kept for its key
    assert routes.get("other", "http://other.example/") is None  # a new key reads the environment now
    for number in range(10):
        routes.get(number, f"http://host-{number}.example/")
    assert len(routes) <= 3
