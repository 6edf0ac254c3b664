"""``connector-proxy serve`` as a real process: packages installed, upgraded and removed while it
serves take effect without a restart and without a failed request; ``SIGHUP`` reloads too."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from proxytest.serve_process import serving

COMMAND = '''
import pathlib
import time


class {name}:
    """Answers with the version of its package."""

    def __init__(self, seconds: float = 0, started: str = ""):
        self.seconds = seconds
        self.started = started

    def execute(self, config, task_data):
        if self.started:
            pathlib.Path(self.started).touch()
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


def run_slow(url: str, command: str, started: Path) -> httpx.Response:
    return httpx.post(f"{url}/v1/do/reloaded/{command}", json={"seconds": 2, "started": str(started)}, timeout=30)


def wait_running(started: Path, within: float = 30) -> None:
    """Until the slow command runs (its worker process started, its module imported)."""
    deadline = time.monotonic() + within
    while not started.exists():
        assert time.monotonic() < deadline, "the slow command did not start"
        time.sleep(0.05)


def test_installed_upgraded_and_removed_packages_apply_without_a_restart_or_a_failed_request(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    v1 = build_package(tmp_path / "src", "1.0", ["Hello", "Slow"])
    v2 = build_package(tmp_path / "src", "2.0", ["Hello2", "Slow"])
    with serving(site) as proxy, Load(proxy.url) as load, ThreadPoolExecutor(1) as pool:
        assert proxy.commands() == set()
        pip_install(v1, site)
        assert proxy.wait_for(lambda seen: bool(seen)) == {"reloaded/Hello", "reloaded/Slow"}

        started = tmp_path / "slow-started"
        in_flight = pool.submit(run_slow, proxy.url, "Slow", started)  # answered by the worker being replaced
        wait_running(started)
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

        started = tmp_path / "slow-started"
        in_flight = pool.submit(run_slow, proxy.url, "Slow", started)
        wait_running(started)
        shutil.rmtree(site)
        proxy.process.send_signal(signal.SIGHUP)  # the worker running Slow is stopped meanwhile
        assert proxy.wait_for(lambda seen: not seen) == set()
        answer = in_flight.result(timeout=60)
        assert answer.status_code == 200
        assert answer.json()["command_response"]["body"] == {"version": "1.0"}
    assert load.failures == []


def frozen_objects(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    [line] = [line for line in metrics.splitlines() if line.startswith("connector_proxy_gc_frozen_objects ")]
    return float(line.split()[1])


def test_a_started_worker_freezes_what_start_up_built_unless_told_not_to(tmp_path: Path) -> None:
    with serving(tmp_path) as frozen, serving(tmp_path, CONNECTOR_PROXY_GC_FREEZE="false") as unfrozen:
        assert frozen_objects(frozen.url) > 50_000  # the modules, the app, the bundled connectors' registry
        assert frozen_objects(unfrozen.url) == 0
