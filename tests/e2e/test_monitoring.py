"""The chart's Grafana dashboard against a real Prometheus: every panel's queries return data.

Debian's Prometheus scrapes, every second, a real proxy (the HTTP connector, embedded) and a real
operator following two Connectors on the real API server (one federating that proxy, one
unreachable); a bounded load makes calls that succeed, that fail in the command (an upstream 404)
and that are not dispatched (an unknown command). Each panel target's expression, with Grafana's
``$__rate_interval`` as 15 s, must then return at least one finite sample; each alert's expression
must be a valid query. With ``DASHBOARD_PICTURE`` naming a file, the panels' range queries over the
run are drawn there (how docs/images/dashboard.svg is made).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml
from chart.helm import CHART
from e2e.dashboard_picture import Panel, Series, legend_of, render
from e2e.realkube import Operators, RealCluster
from fastapi import FastAPI, Response
from kube.connectors import connector, wait_condition

from connector_proxy.app import create_app
from connector_proxy.settings import Settings
from proxytest.servers import free_port, serve_in_thread

DASHBOARD = json.loads((CHART / "dashboards" / "connector-proxy.json").read_text())
RULES = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
WITHIN = 90.0


def _upstream() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/missing")
    async def missing() -> Response:
        return Response(status_code=404)

    return app


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as servers:
        yield servers


def _prometheus(tmp_path: Path, targets: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: make test-packages (Debian's prometheus package)", pytrace=False)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def _load(proxy: str, upstream: str, stop: threading.Event) -> int:
    """Calls in a bounded loop (at most 2,000, until ``stop``): successes, command errors, dispatch errors."""
    bodies = [
        ("http/GetRequestV2", {"url": f"{upstream}/ok"}),
        ("http/GetRequestV2", {"url": f"{upstream}/missing"}),
        ("nope/Nothing", {}),
    ]
    sent = 0
    with httpx.Client(timeout=10) as client:
        while sent < 2000 and not stop.is_set():
            command, body = bodies[sent % len(bodies)]
            client.post(f"{proxy}/v1/do/{command}", json=body)
            sent += 1
            time.sleep(0.01)
    return sent


def _has_data(prometheus: str, expr: str) -> bool:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return any(math.isfinite(float(item["value"][1])) for item in answer["data"]["result"])


def _picture(prometheus: str) -> str:
    end = time.time()
    panels = []
    for panel in DASHBOARD["panels"]:
        series: list[Series] = []
        for target in panel["targets"]:
            params = {"query": target["expr"].replace("$__rate_interval", "15s"), "start": end - 60, "end": end,
                      "step": 1}  # fmt: skip
            answer = httpx.get(f"{prometheus}/api/v1/query_range", params=params, timeout=10).json()
            for item in answer["data"]["result"]:
                points = [(float(t), float(v)) for t, v in item["values"]]
                series.append(Series(legend_of(target["legendFormat"], item["metric"]), points))
        panels.append(Panel(panel["title"], panel["fieldConfig"]["defaults"]["unit"], series))
    return render(DASHBOARD["title"], panels)


async def test_every_dashboard_panel_has_data_and_every_alert_is_a_valid_query(
    kube: RealCluster, operators: Operators, stack: ExitStack, tmp_path: Path
) -> None:
    upstream = stack.enter_context(serve_in_thread(_upstream()))
    proxy = stack.enter_context(serve_in_thread(create_app(Settings(only_connectors=["http"]))))
    operator = await operators.start(discovery_interval=1)
    await kube.create(connector("served", {"url": {"endpoint": proxy}}, namespace=kube.namespace))
    await kube.create(
        connector("gone", {"url": {"endpoint": f"http://127.0.0.1:{free_port()}"}}, namespace=kube.namespace)
    )
    await wait_condition(kube, "served", "Ready", "True", namespace=kube.namespace, within=30)
    await wait_condition(kube, "gone", "Ready", "False", "Unreachable", namespace=kube.namespace, within=30)

    targets = {"connector-proxy": proxy.removeprefix("http://"),
               "connector-operator": f"127.0.0.1:{operator.settings.recheck_port}"}  # fmt: skip
    process, prometheus = _prometheus(tmp_path, targets)
    stop = threading.Event()
    load = asyncio.create_task(asyncio.to_thread(_load, proxy, upstream, stop))
    try:
        queries = [
            (panel["title"], target["expr"].replace("$__rate_interval", "15s"))
            for panel in DASHBOARD["panels"]
            for target in panel["targets"]
        ]
        assert len(queries) >= 12
        missing = queries
        deadline = time.monotonic() + WITHIN
        while missing and time.monotonic() < deadline:
            await asyncio.sleep(1)
            try:
                missing = [
                    (title, expr) for title, expr in missing if not await asyncio.to_thread(_has_data, prometheus, expr)
                ]
            except httpx.TransportError:
                continue  # Prometheus is still starting
        assert missing == [], f"panels without data after {WITHIN:g} s: {missing}"
        for group in RULES["groups"]:
            for rule in group["rules"]:
                await asyncio.to_thread(_has_data, prometheus, rule["expr"])  # a valid query (it need not fire)
        picture = os.environ.get("DASHBOARD_PICTURE")
        if picture:
            await asyncio.sleep(40)  # a longer run to draw
            await asyncio.to_thread(lambda: Path(picture).write_text(_picture(prometheus)))
    finally:
        stop.set()
        sent = await load
        process.terminate()
        process.wait(timeout=30)
    assert sent > 0
