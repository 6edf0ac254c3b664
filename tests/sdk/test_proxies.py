"""The environment's proxy settings as httpx mounts, read as httpx reads them."""

from __future__ import annotations

from typing import Any

import pytest

from spiff_connector_sdk.proxies import environment_proxies


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
