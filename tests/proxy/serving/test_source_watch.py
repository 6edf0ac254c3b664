"""``serve --reload``: a connector's changed source reaches new workers; installed copies are not watched."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from connector_proxy.serving.source_watch import source_directories
from proxytest.paths import ROOT
from proxytest.serve_process import proxy_environment
from proxytest.servers import free_port

COMMAND = '''
class {name}:
    """Say {word}."""

    def execute(self, config, task_data):
        return {{"command_response": {{"body": {{"said": "{word}"}}, "mimetype": "application/json"}},
                "command_response_version": 2, "error": None, "spiff__logs": []}}
'''


def _package(root: Path) -> Path:
    commands = root / "connector_devtool" / "commands"
    commands.mkdir(parents=True)
    (root / "connector_devtool" / "__init__.py").write_text("")
    (commands / "__init__.py").write_text("")
    (commands / "hello.py").write_text(COMMAND.format(name="Hello", word="hello"))
    return commands


def test_the_sources_of_the_connectors_that_load_are_watched(tmp_path: Path) -> None:
    _package(tmp_path)
    found = source_directories([tmp_path])
    assert (tmp_path / "connector_devtool").resolve() in found
    assert (ROOT / "connectors" / "http" / "spiff_connector_http").resolve() in found  # an editable install
    assert not [path for path in found if "site-packages" in path.parts]


def _listed(url: str) -> set[str]:
    try:
        return {c["id"] for c in httpx.get(f"{url}/v1/commands", timeout=2).json()}
    except (httpx.TransportError, ValueError):
        return set()


def _wait_for(url: str, command: str, process: subprocess.Popen[str], budget: float) -> bool:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        if command in _listed(url):
            return True
        time.sleep(0.2)
    return False


def test_a_changed_source_is_served_after_a_graceful_reload(tmp_path: Path) -> None:
    commands = _package(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = proxy_environment(
        CONNECTOR_PROXY_HOST="127.0.0.1",
        CONNECTOR_PROXY_PORT=str(port),
        CONNECTOR_PROXY_CONNECTOR_PATHS=json.dumps([str(tmp_path)]),
        CONNECTOR_PROXY_LOG_FORMAT="text",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "connector_proxy", "serve", "--reload"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _wait_for(url, "devtool/Hello", process, 30), "devtool/Hello was never listed"
        (commands / "bye.py").write_text(COMMAND.format(name="Bye", word="bye"))
        assert _wait_for(url, "devtool/Bye", process, 30), "the new command was not served after the change"
        answer = httpx.post(f"{url}/v1/do/devtool/Bye", json={}, timeout=10)
        assert answer.json()["command_response"]["body"] == {"said": "bye"}
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate(timeout=10)
    assert "connector sources changed" in output
