"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector_proxy.app import create_app
from connector_proxy.settings import Settings
from proxytest.packages import install_fixture_packages
from proxytest.servers import serve_in_thread

# kube_emulator: the Kubernetes API emulator; provider, browser, start: the OAuth tests' fixtures
pytest_plugins = ["kube.fixtures", "proxytest.oauth_fixtures"]


@pytest.fixture(scope="session")
def community_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding every fixture community package, pip-installed into it."""
    return install_fixture_packages(tmp_path_factory.mktemp("community-site"))


ProxyFactory = Callable[..., str]


@pytest.fixture
def start_proxy(community_site: Path) -> Iterator[ProxyFactory]:
    """Start a real proxy on 127.0.0.1 (embedded mode, bundled + fixture connectors); return its URL.

    Keyword arguments are Settings fields (e.g. ``api_key="k"``, ``command_timeout=1``).
    """
    with ExitStack() as stack:

        def start(**overrides: Any) -> str:
            overrides.setdefault("connector_paths", [community_site])
            settings = Settings(**overrides)
            return stack.enter_context(serve_in_thread(create_app(settings)))

        yield start


@pytest.fixture
def proxy_url(start_proxy: ProxyFactory) -> str:
    return start_proxy()


@pytest.fixture
def client(proxy_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy_url, timeout=30) as http:
        yield http
