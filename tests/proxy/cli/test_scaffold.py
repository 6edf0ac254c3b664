"""``connector-proxy new``: the package it writes installs, loads in the proxy and passes its own test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proxytest.serve_process import proxy_environment


def _run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=proxy_environment(**env), cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_scaffold_installs_loads_and_passes_its_test(tmp_path: Path) -> None:
    made = _run("-m", "connector_proxy", "new", "acme_crm", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    package = tmp_path / "acme-crm-connector"
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        "README.md",
        "acme_crm_connector/__init__.py",
        "acme_crm_connector/py.typed",
        "pyproject.toml",
        "tests/test_commands.py",
    ]
    site = tmp_path / "site"
    installed = _run(
        "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site), str(package)
    )
    assert installed.returncode == 0, installed.stderr
    paths = json.dumps([str(site)])
    checked = _run(
        "-m", "connector_proxy", "check", "--require", "acme_crm/Hello", CONNECTOR_PROXY_CONNECTOR_PATHS=paths
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    long_greeting = "Greetings-" * 6
    misconfigured = _run(
        "-m", "connector_proxy", "check", CONNECTOR_PROXY_CONNECTOR_PATHS=paths,
        CONNECTOR_PROXY_CONFIG__ACME_CRM_GREETING=long_greeting,
    )  # fmt: skip
    assert misconfigured.returncode == 1
    assert "acme_crm: invalid config: ACME_CRM_GREETING: String should have at most 50 characters" in (
        misconfigured.stderr
    )
    assert long_greeting not in misconfigured.stdout + misconfigured.stderr
    done = _run(
        "-m", "connector_proxy", "do", "acme_crm/Hello", "name=Ada",
        CONNECTOR_PROXY_CONNECTOR_PATHS=paths, CONNECTOR_PROXY_CONFIG__ACME_CRM_GREETING="Hey",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["command_response"]["body"] == {"message": "Hey, Ada!"}
    tested = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=package, PYTHONPATH=str(site))
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert "4 passed" in tested.stdout


@pytest.mark.parametrize("name", ["Acme", "1st", "acme-crm", "a" * 41])
def test_a_bad_name_writes_nothing(tmp_path: Path, name: str) -> None:
    result = _run("-m", "connector_proxy", "new", name, "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "is not a connector name" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "acme-connector").mkdir()
    (tmp_path / "acme-connector" / "mine.txt").write_text("keep")
    result = _run("-m", "connector_proxy", "new", "acme", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "exists already; nothing was written" in result.stderr
    assert [p.name for p in (tmp_path / "acme-connector").iterdir()] == ["mine.txt"]
