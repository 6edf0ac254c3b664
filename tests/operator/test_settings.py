"""``connector_operator.settings``: what ``CONNECTOR_OPERATOR_*`` variables become, and what is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connector_operator.settings import OperatorSettings


def test_namespaces_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_OPERATOR_NAMESPACES", "team-a, team-b")
    settings = OperatorSettings()
    assert settings.namespaces == ["team-a", "team-b"]
    assert not settings.cluster_wide
    monkeypatch.setenv("CONNECTOR_OPERATOR_NAMESPACES", '["one"]')
    assert OperatorSettings().namespaces == ["one"]


def test_no_namespaces_means_cluster_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONNECTOR_OPERATOR_NAMESPACES", raising=False)
    assert OperatorSettings().cluster_wide


@pytest.mark.parametrize("name", ["team-*", "Team", "-a", "a_b", "x" * 64, ""])
def test_namespace_patterns_and_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="not a namespace name"):
        OperatorSettings(namespaces=[name])


def test_service_endpoint_template_placeholders_are_checked() -> None:
    assert OperatorSettings(service_endpoint="http://{service}.{namespace}:{port}").service_endpoint
    with pytest.raises(ValidationError, match="unknown placeholder"):
        OperatorSettings(service_endpoint="http://{svc}.{namespace}:{port}")


def test_recheck_port_defaults_to_8081_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONNECTOR_OPERATOR_RECHECK_PORT", raising=False)
    assert OperatorSettings().recheck_port == 8081
    monkeypatch.setenv("CONNECTOR_OPERATOR_RECHECK_PORT", "9091")
    assert OperatorSettings().recheck_port == 9091
    with pytest.raises(ValidationError, match="recheck_port"):
        OperatorSettings(recheck_port=0)
