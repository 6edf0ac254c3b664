"""The README's quick start, run as written: ``make serve``, then each of its "Try it" commands.

``make serve`` runs on a free port (``CONNECTOR_PROXY_PORT``; the README's ``localhost:7004`` is
rewritten to it) with the venv ``make test`` set up; each command must exit 0 and print JSON, and
the call it makes must succeed. ``make test`` itself is what runs this.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from proxytest.doc_shell import ROOT, commands, shell_blocks
from proxytest.serve_process import proxy_environment
from proxytest.servers import free_port


def _quick_start() -> list[str]:
    return shell_blocks("README.md", section="Quick start")


def test_the_quick_start_has_the_two_commands_and_a_try_it_block() -> None:
    setup, try_it = _quick_start()
    assert commands(setup) == ["make serve", "make test"]
    assert all(command.startswith("curl ") for command in commands(try_it))


@pytest.fixture
def served() -> Iterator[str]:
    """``make serve`` from the README, on a free port; its base URL."""
    port = free_port()
    env = proxy_environment(
        CONNECTOR_PROXY_PORT=str(port), CONNECTOR_PROXY_HOST="127.0.0.1", CONNECTOR_PROXY_LOG_LEVEL="WARNING"
    )
    process = subprocess.Popen(["make", "--no-print-directory", "serve"], cwd=ROOT, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else "make serve exited"
            try:
                if httpx.get(f"{url}/v1/liveness", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("make serve did not answer within 90 s")
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)  # make and the proxy under it
        process.wait(timeout=30)


def test_the_try_it_commands_work_against_make_serve(served: str) -> None:
    _, try_it = _quick_start()
    for command in commands(try_it):
        rewritten = command.replace("localhost:7004", served)
        result = subprocess.run(["bash", "-c", rewritten], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{shlex.quote(command)}: {result.stderr}"
        answer = json.loads(result.stdout)
        if isinstance(answer, list):  # the catalog
            assert "http/GetRequestV2" in {entry["id"] for entry in answer}
        else:  # the call
            assert answer["error"] is None, answer
            assert answer["command_response"]["body"] == {"ok": True}
