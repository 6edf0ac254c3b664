"""``connector-proxy serve`` as a real process: packages installed, upgraded and removed while it
serves take effect without a restart and without a failed request; ``SIGHUP`` reloads too."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from proxytest.servers import free_port

COMMAND = '''
import time


class {name}:
    """Answers with the version of its package."""

    def __init__(self, seconds: float = 0):
        self.seconds = seconds

    def execute(self, config, task_data):
        time.sleep(min(float(self.seconds), 5))
        return {{"command_response": {{"body": {{"version": "{version}"}}}}, "command_response_version": 2}}
'''


def build_package(root: Path, version: str, commands: list[str]) -> Path:
    """A community package ``connector-reloaded`` of ``version`` with one class per command."""
    source = root / f"connector-reloaded-{version}"
    package = source / "src" / "connector_reloaded"
    (package / "commands").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "commands" / "__init__.py").write_text("")
    for name in commands:
        (package / "commands" / f"{name.lower()}.py").write_text(COMMAND.format(name=name, version=version))
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "connector-reloaded"\nversion = "{version}"\n'
        '[tool.setuptools.packages.find]\nwhere = ["src"]\n'
    )
    return source


def pip_install(source: Path, target: Path) -> None:
    options = ["--quiet", "--disable-pip-version-check", "--no-deps", "--no-index", "--no-build-isolation", "--upgrade"]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", *options, "--target", str(target), str(source)],
        check=True,
        timeout=300,
        capture_output=True,
    )


def uninstall(target: Path) -> None:
    """What ``pip uninstall`` does to a ``--target`` directory: the package and its metadata go."""
    for entry in target.iterdir():
        if entry.name.startswith(("connector_reloaded", "connector-reloaded")):
            shutil.rmtree(entry)


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


@contextmanager
def serving(site: Path, **variables: str) -> Iterator[Proxy]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_PROXY_")}
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


class Load:
    """Requests in a loop from another thread, counting every one that did not answer 200.

    A connection per request, as spiff-arena's backend sends them. (A stopping worker closes its
    idle keep-alive connections, as an idle timeout does; a request a client writes into one at
    that instant needs the client's usual retry.)
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.sent = 0
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for _ in range(100_000):  # bounded; stopped long before
                if self.stop.is_set():
                    return
                try:
                    answer = client.get(f"{self.url}/v1/commands")
                    if answer.status_code != 200:
                        self.failures.append(f"HTTP {answer.status_code}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                self.sent += 1

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def run_slow(url: str, command: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/do/reloaded/{command}", json={"seconds": 2}, timeout=30)


def test_installed_upgraded_and_removed_packages_apply_without_a_restart_or_a_failed_request(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    v1 = build_package(tmp_path / "src", "1.0", ["Hello", "Slow"])
    v2 = build_package(tmp_path / "src", "2.0", ["Hello2", "Slow"])
    with serving(site) as proxy, Load(proxy.url) as load, ThreadPoolExecutor(1) as pool:
        assert proxy.commands() == set()
        pip_install(v1, site)
        assert proxy.wait_for(lambda seen: bool(seen)) == {"reloaded/Hello", "reloaded/Slow"}

        in_flight = pool.submit(run_slow, proxy.url, "Slow")  # answered by the worker being replaced
        time.sleep(0.5)
        pip_install(v2, site)
        assert proxy.wait_for(lambda seen: "reloaded/Hello2" in seen) == {"reloaded/Hello2", "reloaded/Slow"}
        answer = in_flight.result(timeout=60)
        assert answer.status_code == 200
        assert answer.json()["command_response"]["body"] == {"version": "1.0"}
        upgraded = httpx.post(f"{proxy.url}/v1/do/reloaded/Hello2", json={}, timeout=30)
        assert upgraded.json()["command_response"]["body"] == {"version": "2.0"}

        uninstall(site)
        assert proxy.wait_for(lambda seen: not seen) == set()
    assert load.sent > 0
    assert load.failures == []


def test_sighup_reloads_when_the_scan_is_off(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with (
        serving(site, CONNECTOR_PROXY_RELOAD_PACKAGES="false") as proxy,
        Load(proxy.url) as load,
        ThreadPoolExecutor(1) as pool,
    ):
        pip_install(build_package(tmp_path / "src", "1.0", ["Hello", "Slow"]), site)
        time.sleep(1.5)  # several scan intervals: nothing watches
        assert proxy.commands() == set()
        proxy.process.send_signal(signal.SIGHUP)
        assert proxy.wait_for(lambda seen: bool(seen)) == {"reloaded/Hello", "reloaded/Slow"}

        in_flight = pool.submit(run_slow, proxy.url, "Slow")
        time.sleep(0.5)
        shutil.rmtree(site)
        proxy.process.send_signal(signal.SIGHUP)  # the worker running Slow is stopped meanwhile
        assert proxy.wait_for(lambda seen: not seen) == set()
        answer = in_flight.result(timeout=60)
        assert answer.status_code == 200
        assert answer.json()["command_response"]["body"] == {"version": "1.0"}
    assert load.failures == []
