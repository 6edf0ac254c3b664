"""docs/connectors.md's "Start, test and try a connector", run as written in a fresh virtualenv.

The virtualenv sees this environment's packages (the proxy, the SDK, pytest) through a ``.pth``
file and installs nothing from an index (``PIP_NO_INDEX``), so ``pip install -e '.[test]'`` adds
only the new package, to it alone. The block runs in one ``bash -e`` (its ``cd`` holds for the
commands after it) but for its last command, ``serve --reload``, which serves until stopped: it is
started on a free port and must serve the new command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sysconfig
import time
import venv
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import httpx
import pytest

from proxytest.doc_shell import commands, shell_blocks
from proxytest.serve_process import proxy_environment
from proxytest.servers import free_port

SCRIPTS = {"pip": "pip._internal.cli.main", "pytest": "pytest", "connector-proxy": "connector_proxy.cli"}
ENTRY = {"pip": "main", "pytest": "console_main", "connector-proxy": "main"}


def _walkthrough() -> list[str]:
    [block] = [b for b in shell_blocks("docs/connectors.md") if "connector-proxy new" in b]
    return commands(block)


def _overlay_venv(where: Path) -> Path:
    """A virtualenv over this one's packages, with its own ``pip``, ``pytest`` and ``connector-proxy``."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]  # its .pth files (editable installs) must be processed too
    (Path(purelib) / "overlay.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    for name, module in SCRIPTS.items():
        script = where / "bin" / name
        script.write_text(f"#!{python}\nimport sys\nfrom {module} import {ENTRY[name]}\nsys.exit({ENTRY[name]}())\n")
        script.chmod(0o755)
    return where / "bin"


def test_the_walkthrough_names_the_steps_the_scaffold_supports() -> None:
    steps = _walkthrough()
    assert steps[0] == "connector-proxy new acme_crm && cd acme-crm-connector"
    assert steps[-1] == "connector-proxy serve --reload"


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    bin_dir = _overlay_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    env = proxy_environment(
        PATH=f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip's inverted switch: build with the virtualenv's setuptools
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("VIRTUAL_ENV", None)
    *steps, serve = _walkthrough()
    script = "set -e\n" + "\n".join(steps) + "\n"
    ran = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "4 passed" in ran.stdout  # the scaffold's own tests
    assert "acme_crm" in ran.stdout and '"message": "Hello, Ada!"' in ran.stdout  # check, then do
    package = work / "acme-crm-connector"
    with pytest.raises(PackageNotFoundError):  # installed in the walk-through's virtualenv only
        distribution("acme-crm-connector")

    port = free_port()
    served = subprocess.Popen(["bash", "-c", f"exec {serve}"], cwd=package, start_new_session=True,
                              env={**env, "CONNECTOR_PROXY_PORT": str(port), "CONNECTOR_PROXY_HOST": "127.0.0.1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        ids: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "acme_crm/Hello" not in ids:
            assert served.poll() is None, served.stderr.read() if served.stderr else "serve exited"
            try:
                ids = {c["id"] for c in httpx.get(f"http://127.0.0.1:{port}/v1/commands", timeout=2).json()}
            except httpx.TransportError:
                time.sleep(0.2)
        assert "acme_crm/Hello" in ids
    finally:
        os.killpg(served.pid, signal.SIGTERM)
        served.wait(timeout=30)
