"""``connector-proxy serve`` as a real process for the serving tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from proxytest.servers import free_port


@dataclass
class Proxy:
    url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def commands(self) -> set[str]:
        answer = httpx.get(f"{self.url}/v1/commands", timeout=10)
        assert answer.status_code == 200
        return {c["id"] for c in answer.json() if c["id"].startswith("reloaded/")}

    def wait_for(self, predicate: Callable[[set[str]], bool], budget: float = 60) -> set[str]:
        deadline = time.monotonic() + budget
        seen: set[str] = set()
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "".join(self.output)
            seen = self.commands()
            if predicate(seen):
                return seen
            time.sleep(0.1)
        pytest.fail(f"the catalog never changed as expected; last seen {sorted(seen)}")


def proxy_environment(**variables: str) -> dict[str, str]:
    """This process's environment without its ``CONNECTOR_PROXY_*`` settings, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_PROXY_")}
    env.update(variables)
    return env


def run_cli(*args: str, cwd: Path | None = None, **variables: str) -> subprocess.CompletedProcess[str]:
    """``connector-proxy <args>`` as a subprocess with ``variables`` as its only settings; its output."""
    return subprocess.run(
        [sys.executable, "-m", "connector_proxy", *args],
        env=proxy_environment(**variables),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def serving(site: Path, **variables: str) -> Iterator[Proxy]:
    port = free_port()
    env = proxy_environment()
    env.update(
        CONNECTOR_PROXY_HOST="127.0.0.1",
        CONNECTOR_PROXY_PORT=str(port),
        CONNECTOR_PROXY_CONNECTOR_PATHS=f'["{site}"]',
        CONNECTOR_PROXY_PACKAGE_SCAN_INTERVAL="0.2",
        **variables,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "connector_proxy", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proxy = Proxy(f"http://127.0.0.1:{port}", process)
    reader = threading.Thread(target=lambda: proxy.output.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, "".join(proxy.output)
            try:
                if httpx.get(f"{proxy.url}/v1/liveness", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield proxy
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        reader.join(timeout=10)
