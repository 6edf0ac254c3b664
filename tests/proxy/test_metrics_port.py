"""``/metrics`` on a port of its own: only there, and nothing else there (a real ``serve``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from connector_proxy.settings import Settings
from proxytest.serve_process import serving
from proxytest.servers import free_port


def test_metrics_move_to_their_own_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    with serving(tmp_path, CONNECTOR_PROXY_METRICS_PORT=str(metrics_port)) as proxy:
        metrics = f"http://127.0.0.1:{metrics_port}"
        scraped = httpx.get(f"{metrics}/metrics", timeout=10)
        assert scraped.status_code == 200 and "connector_proxy_registry_commands" in scraped.text
        assert httpx.get(f"{proxy.url}/metrics", timeout=10).status_code == 404  # not where spiff-arena calls
        assert httpx.get(f"{proxy.url}/v1/commands", timeout=10).status_code == 200
        for path in ("/v1/commands", "/docs", "/v1/status"):  # the metrics port serves nothing else
            assert httpx.get(f"{metrics}{path}", timeout=10).status_code == 404


def test_without_a_metrics_port_metrics_stay_on_the_main_port(tmp_path: Path) -> None:
    with serving(tmp_path) as proxy:
        assert httpx.get(f"{proxy.url}/metrics", timeout=10).status_code == 200


def test_the_metrics_port_must_be_another_port() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        Settings(port=7004, metrics_port=7004)
