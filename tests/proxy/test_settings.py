"""Settings from the environment (prefix CONNECTOR_PROXY_)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from connector_proxy.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_PROXY_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 7004)
    assert settings.api_key is None
    assert 0 < settings.command_timeout < 45
    assert settings.embedded_enabled is True and settings.kubernetes is False


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"FROM_FILE": "f", "SHARED": "file"}))
    monkeypatch.setenv("CONNECTOR_PROXY_PORT", "8123")
    monkeypatch.setenv("CONNECTOR_PROXY_HOST", "127.0.0.1")
    monkeypatch.setenv("CONNECTOR_PROXY_API_KEY", "abc")
    monkeypatch.setenv("CONNECTOR_PROXY_COMMAND_TIMEOUT", "12.5")
    monkeypatch.setenv("CONNECTOR_PROXY_CONFIG", json.dumps({"FROM_JSON": 1, "SHARED": "json"}))
    monkeypatch.setenv("CONNECTOR_PROXY_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("CONNECTOR_PROXY_CONFIG__XERO_CLIENT_ID", "client-id")
    monkeypatch.setenv("CONNECTOR_PROXY_CONFIG__SHARED", "entry")
    settings = Settings()
    assert (settings.port, settings.host, settings.command_timeout) == (8123, "127.0.0.1", 12.5)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "abc"
    assert settings.connector_config() == {
        "FROM_FILE": "f",
        "FROM_JSON": 1,
        "XERO_CLIENT_ID": "client-id",
        "SHARED": "entry",
    }


def test_secrets_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_PROXY_API_KEY", "very-secret-key")
    monkeypatch.setenv("CONNECTOR_PROXY_CONFIG__PASSWORD", "very-secret-password")
    text = repr(Settings()) + str(Settings())
    assert "very-secret-key" not in text and "very-secret-password" not in text


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_api_key_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CONNECTOR_PROXY_API_KEY", value)
    with pytest.raises(ValidationError, match="empty"):
        Settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONNECTOR_PROXY_PORT", "0"),
        ("CONNECTOR_PROXY_PORT", "seventy"),
        ("CONNECTOR_PROXY_COMMAND_TIMEOUT", "-1"),
        ("CONNECTOR_PROXY_CONFIG", "[1, 2]"),
        ("CONNECTOR_PROXY_CONFIG_FILE", "/nonexistent/config.json"),
        ("CONNECTOR_PROXY_LOG_FORMAT", "xml"),
        ("CONNECTOR_PROXY_NAMESPACES", "team-*"),
        ("CONNECTOR_PROXY_NAMESPACES", "Team-A"),
        ("CONNECTOR_PROXY_MAX_REQUEST_BYTES", "10"),
        ("CONNECTOR_PROXY_PATH_PREFIX", "/connector-proxy/"),
        ("CONNECTOR_PROXY_PATH_PREFIX", "connector-proxy"),
        ("CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST", "spiff.example.com/api"),
        ("CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST", "https://ok.example/cb,ftp://files.example/"),
        ("CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST", "https://spiff.example.com/cb?token=x"),
        ("CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST", "https://user@spiff.example.com/cb"),
        ("CONNECTOR_PROXY_OPERATOR_URL", "connector-operator.spiff.svc:8081"),
        ("CONNECTOR_PROXY_OPERATOR_URL", "ftp://connector-operator:8081"),
        ("CONNECTOR_PROXY_OPERATOR_URL", "http://connector-operator:8081/?token=x"),
        ("CONNECTOR_PROXY_OPERATOR_URL", "http:///v1"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_a_bad_redirect_allowlist_entry_is_named_by_position_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """It used to be accepted and fail as a 500 on the first browser flow."""
    monkeypatch.setenv("CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST", "https://ok.example/cb, not-a-url")
    with pytest.raises(ValidationError) as raised:
        Settings()
    (error,) = raised.value.errors()
    assert error["loc"] == ("oauth_redirect_allowlist",)
    assert "entry 2 is not an http(s) URL prefix" in error["msg"]
    assert "not-a-url" not in error["msg"]


def test_good_redirect_allowlist_entries_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST", "https://a.example/cb,http://127.0.0.1:7000/")
    assert Settings().oauth_redirect_allowlist == ["https://a.example/cb", "http://127.0.0.1:7000/"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "http://spiff-connector-proxy-operator.spiff.svc:8081",
            "http://spiff-connector-proxy-operator.spiff.svc:8081",
        ),
        ("https://operator.example/base/", "https://operator.example/base/"),
        ("", ""),  # empty: off, like unset
    ],
)
def test_operator_url(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.delenv("CONNECTOR_PROXY_OPERATOR_URL", raising=False)
    assert Settings().operator_url is None
    monkeypatch.setenv("CONNECTOR_PROXY_OPERATOR_URL", value)
    assert Settings().operator_url == expected


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert Settings().trusted_proxies == ["127.0.0.1", "::1"]
    assert Settings(trusted_proxies="10.0.0.0/8, fd00::/8,*").trusted_proxies == ["10.0.0.0/8", "fd00::/8", "*"]
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(trusted_proxies="proxy.example")
