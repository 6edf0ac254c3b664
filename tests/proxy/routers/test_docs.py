"""``/docs`` and ``/redoc`` render in a real headless browser with no internet: every command listed.

Chromium (Debian's ``chromium``; ``make test`` installs it) loads the pages with every request that
is not to 127.0.0.1 sent to a closed proxy port, so a script or style from a CDN would fail and
leave the page blank. The rendered DOM must hold one operation per installed command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import ProxyFactory

BLOCKED = "--proxy-server=http://127.0.0.1:9"  # port 9 (discard): nothing answers there


def _rendered(url: str, profile: Path) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is not installed (make test-packages installs it)"
    result = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", BLOCKED,
         f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def proxy(start_proxy: ProxyFactory) -> tuple[str, set[str]]:
    url = start_proxy()
    return url, {entry["id"] for entry in httpx.get(f"{url}/v1/commands", timeout=10).json()}


def test_the_pages_load_nothing_from_elsewhere(proxy: tuple[str, set[str]]) -> None:
    url, _ = proxy
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{url}{page}", timeout=10).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(source.startswith("/docs-assets/") for source in sources), sources
        for source in sources:
            assert httpx.get(f"{url}{source}", timeout=10).status_code == 200, source


def test_behind_a_path_prefix_the_pages_use_it(start_proxy: ProxyFactory) -> None:
    url = start_proxy(path_prefix="/connector-proxy")
    html = httpx.get(f"{url}/connector-proxy/docs", timeout=10).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/connector-proxy/docs-assets/") for source in sources), sources
    assert all(httpx.get(f"{url}{source}", timeout=10).status_code == 200 for source in sources)
    assert "url: '/connector-proxy/openapi.json'" in html


def test_swagger_ui_renders_one_operation_per_command_offline(proxy: tuple[str, set[str]], tmp_path: Path) -> None:
    url, commands = proxy
    dom = _rendered(f"{url}/docs", tmp_path)
    listed = set(re.findall(r'class="opblock-summary-path" data-path="/v1/do/([^"]+)"', dom))
    assert commands and listed == commands | {"{connector}/{command}"}  # and the protocol's generic one
    assert 'data-path="/v1/commands"' in dom


def test_redoc_renders_one_operation_per_command_offline(proxy: tuple[str, set[str]], tmp_path: Path) -> None:
    url, commands = proxy
    dom = _rendered(f"{url}/redoc", tmp_path)
    listed = set(re.findall(r'data-item-id="tag/[^/"]+/operation/(do_[^"]+)"', dom))
    assert listed == {"do_" + command.replace("/", "_") for command in commands}
