"""``connector-proxy serve`` as a real subprocess: start-up, refusal of bad settings."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from proxytest.serve_process import proxy_environment
from proxytest.servers import free_port


@contextmanager
def running(env: dict[str, str], options: list[str] | None = None) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector_proxy", "serve", *(options or [])],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_live(url: str, process: subprocess.Popen[str], budget: float = 30.0) -> None:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{url}/v1/liveness", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("proxy did not become live")


def test_serve_starts_with_bundled_connectors_and_settings_fromproxy_environment() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = proxy_environment(
        CONNECTOR_PROXY_HOST="127.0.0.1", CONNECTOR_PROXY_PORT=str(port), CONNECTOR_PROXY_API_KEY="cli-key"
    )
    with running(env) as process:
        wait_live(url, process)
        assert httpx.get(f"{url}/v1/commands").status_code == 401
        listed = httpx.get(f"{url}/v1/commands", headers={"Spiff-Connector-Proxy-Api-Key": "cli-key"})
        assert listed.status_code == 200
        assert "http/GetRequestV2" in {c["id"] for c in listed.json()}
    output = process.stdout.read() if process.stdout else ""
    assert "cli-key" not in output


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("CONNECTOR_PROXY_API_KEY", "", "CONNECTOR_PROXY_API_KEY"),
        ("CONNECTOR_PROXY_PORT", "not-a-port", "CONNECTOR_PROXY_PORT"),
    ],
)
def test_bad_settings_stop_start_up_with_a_clear_message(name: str, value: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "connector_proxy", "serve"],
        env=proxy_environment(**{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def _worker_output(level: str) -> list[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = proxy_environment(
        CONNECTOR_PROXY_HOST="127.0.0.1",
        CONNECTOR_PROXY_PORT=str(port),
        CONNECTOR_PROXY_WORKERS="2",
        CONNECTOR_PROXY_LOG_FORMAT="text",
        CONNECTOR_PROXY_LOG_LEVEL=level,
    )
    with running(env) as process:
        wait_live(url, process)
        time.sleep(1.5)  # the other worker starts alongside the one that answered
    output = process.stdout.read() if process.stdout else ""
    return [line for line in output.splitlines() if line.strip()]


def test_every_worker_logs_in_the_configured_format_and_level() -> None:
    lines = _worker_output("INFO")
    built = [line for line in lines if "registry built" in line]
    assert len(built) == 2, lines  # one per worker...
    assert all(" INFO connector_proxy.loading.embedded registry built commands=" in line for line in built)
    assert not [line for line in lines if line.startswith("{")]  # ...and no JSON line from anyone
    assert not [line for line in _worker_output("WARNING") if " INFO " in line]


@pytest.mark.parametrize("access_log", [False, True])
def test_request_lines_are_logged_only_with_access_log(access_log: bool) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = proxy_environment(CONNECTOR_PROXY_HOST="127.0.0.1", CONNECTOR_PROXY_PORT=str(port))
    with running(env, ["--access-log"] if access_log else []) as process:
        wait_live(url, process)
        for _ in range(3):
            httpx.get(f"{url}/v1/commands", timeout=10)
        time.sleep(0.5)
    output = process.stdout.read() if process.stdout else ""
    request_lines = [line for line in output.splitlines() if '"logger":"uvicorn.access"' in line]
    assert (len(request_lines) >= 3) is access_log, output[-2000:]
