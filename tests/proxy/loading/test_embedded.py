"""Which packages embedded mode loads: everything installed, or only a workload's own."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector_proxy.loading.embedded import load_embedded
from proxytest.packages import SDK_FIXTURES, install_fixture_packages


@pytest.fixture(autouse=True)
def _own_sys_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """load_embedded appends the connector paths to sys.path: keep them out of later tests."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield


def _site(tmp_path: Path) -> Path:
    site = install_fixture_packages(tmp_path / "site", ["connector-example"])
    return install_fixture_packages(site, ["spiff-greeter-connector"], root=SDK_FIXTURES)


def test_paths_only_loads_the_packages_of_the_connector_paths_alone(tmp_path: Path) -> None:
    """A pip Connector's workload: its own SDK and community packages, not the image's bundled HTTP
    connector (whose ids every pip workload used to claim, colliding with the chart's own)."""
    loaded = load_embedded(connector_paths=[_site(tmp_path)], paths_only=True)
    connectors = {command.connector for command in loaded.registry.commands.values()}
    assert connectors == {"greeter", "example"}
    assert [c.name for c in loaded.connectors] == ["greeter"]


def test_by_default_the_installed_connectors_come_too(tmp_path: Path) -> None:
    loaded = load_embedded(connector_paths=[_site(tmp_path)])
    connectors = {command.connector for command in loaded.registry.commands.values()}
    assert {"greeter", "example", "http"} <= connectors
