"""Every sub-command refuses bad settings the same way: exit 2, the variable named, no traceback, no value."""

from __future__ import annotations

import pytest

from proxytest.serve_process import run_cli


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CONNECTOR_PROXY_CONFIG", '{"KEY": "SECRETISH-1"', "CONNECTOR_PROXY_CONFIG: not valid JSON"),
        ("CONNECTOR_PROXY_CONNECTOR_PATHS", "[/opt/SECRETISH", "CONNECTOR_PROXY_CONNECTOR_PATHS: not valid JSON"),
        ("CONNECTOR_PROXY_DISABLED_CONNECTORS", "SECRETISH[", "CONNECTOR_PROXY_DISABLED_CONNECTORS: not valid JSON"),
        ("CONNECTOR_PROXY_LOG_LEVEL", "SECRETISH", "CONNECTOR_PROXY_LOG_LEVEL: must be one of DEBUG, INFO"),
        ("CONNECTOR_PROXY_PORT", "SECRETISH", "CONNECTOR_PROXY_PORT: Input should be a valid integer"),
        ("CONNECTOR_PROXY_CONFIG_FILE", "/nonexistent/SECRETISH.json", "CONNECTOR_PROXY_CONFIG_FILE"),
    ],
)
@pytest.mark.parametrize("command", [["serve"], ["commands"], ["check"], ["do", "http/GetRequestV2", "url=x"]])
def test_bad_settings_exit_2_naming_the_variable(name: str, value: str, message: str, command: list[str]) -> None:
    result = run_cli(*command, **{name: value})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("connector-proxy: invalid settings:\n")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if name != "CONNECTOR_PROXY_CONFIG_FILE":  # a path is no secret, and the message must say which file
        assert "SECRETISH" not in result.stderr


def test_log_level_takes_any_case() -> None:
    from connector_proxy.settings import Settings

    assert Settings(log_level="debug").log_level == "DEBUG"
