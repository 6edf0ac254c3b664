"""Which packages embedded mode loads: everything installed, or only a workload's own."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector_proxy.app import create_app
from connector_proxy.loading.embedded import load_embedded
from connector_proxy.settings import Settings
from proxytest.packages import FIXTURES, SDK_FIXTURES, install_fixture_packages
from proxytest.servers import serve_in_thread


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


def test_only_loads_the_named_connectors_sdk_and_community_alike(tmp_path: Path) -> None:
    """One image, several connectors: each image-sourced Connector serves the one it names."""
    site = _site(tmp_path)
    loaded = load_embedded(connector_paths=[site], only=["pg", "example"])
    connectors = {command.connector for command in loaded.registry.commands.values()}
    assert connectors == {"pg", "example"}
    assert [c.name for c in loaded.connectors] == ["pg"]  # only its lifespan is entered
    both = load_embedded(connector_paths=[site], only=["pg", "http"], disabled=["http"])
    assert {command.connector for command in both.registry.commands.values()} == {"pg"}


def test_only_connectors_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_PROXY_ONLY_CONNECTORS", "pg, http")
    assert Settings().only_connectors == ["pg", "http"]
    monkeypatch.setenv("CONNECTOR_PROXY_ONLY_CONNECTORS", '["pg"]')
    assert Settings().only_connectors == ["pg"]


SHADOWING = FIXTURES.parent / "community-shadowing"  # a community connector_http package


def _with_community_http(tmp_path: Path) -> Path:
    return install_fixture_packages(tmp_path / "shadow-site", ["connector-http"], root=SHADOWING)


def test_the_first_party_package_serves_a_name_both_provide_by_default_and_says_why(tmp_path: Path) -> None:
    loaded = load_embedded(connector_paths=[_with_community_http(tmp_path)])
    http = {i: c for i, c in loaded.registry.commands.items() if c.connector == "http"}
    assert "http/GetRequest" not in http  # nothing of the community package, not even its own ids
    assert http["http/GetRequestV2"].source.startswith("spiff_connector_http.")
    [choice] = loaded.registry.sources
    assert (choice.connector, choice.served, choice.left_out) == ("http", "first-party", "connector_http")
    assert "CONNECTOR_PROXY_PREFER_COMMUNITY=http" in choice.reason
    assert not [p for p in loaded.registry.problems if "duplicate" in p]
    assert "http" in [c.name for c in loaded.connectors]


def test_prefer_community_serves_the_community_package_alone(tmp_path: Path) -> None:
    loaded = load_embedded(connector_paths=[_with_community_http(tmp_path)], prefer_community=["http"])
    http = {i: c for i, c in loaded.registry.commands.items() if c.connector == "http"}
    assert set(http) == {"http/GetRequest", "http/GetRequestV2"}
    assert all(c.source.startswith("connector_http.") for c in http.values())
    [choice] = loaded.registry.sources
    assert (choice.served, choice.served_by) == ("community", "connector_http")
    assert "http" not in [c.name for c in loaded.connectors]  # nor its lifespan


def test_prefer_community_without_a_community_package_keeps_the_first_party_one() -> None:
    loaded = load_embedded(prefer_community=["http"])
    assert "http/GetRequestV2" in loaded.registry.commands
    assert loaded.registry.sources == ()


def test_status_reports_which_package_serves_a_name_both_provide(tmp_path: Path) -> None:
    site = _with_community_http(tmp_path)
    for prefer, served in (("", "first-party"), ("http", "community")):
        settings = Settings(connector_paths=[site], prefer_community=prefer)
        with serve_in_thread(create_app(settings)) as url:
            status = httpx.get(f"{url}/v1/status", timeout=10).json()
            body = httpx.post(f"{url}/v1/do/http/GetRequestV2", json={"url": "http://127.0.0.1:1/"}, timeout=30)
        assert [(s["connector"], s["served"]) for s in status["sources"]] == [("http", served)]
        assert (
            body.json()["command_response"]["body"] == {"served_by": "community", "url": "http://127.0.0.1:1/"}
        ) is (served == "community")
