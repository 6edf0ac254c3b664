"""``connector-proxy commands``, ``describe`` and ``check``, run as real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from conftest import ProxyFactory
from proxytest.serve_process import run_cli

cli = run_cli


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("connector-proxy 0.")


def test_commands_json_is_the_catalog_serve_answers(community_site: Path, start_proxy: ProxyFactory) -> None:
    paths = json.dumps([str(community_site)])
    result = cli("commands", "--json", CONNECTOR_PROXY_CONNECTOR_PATHS=paths)
    assert result.returncode == 0, result.stderr
    served = httpx.get(f"{start_proxy(connector_paths=[community_site])}/v1/commands", timeout=10).json()
    assert json.loads(result.stdout) == served


def test_commands_table_and_only_connectors() -> None:
    result = cli("commands", CONNECTOR_PROXY_ONLY_CONNECTORS="pg")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["COMMAND", "PARAMETERS"]
    assert [line.split()[0] for line in lines[1:]] == ["pg/Execute", "pg/Query", "pg/Transaction"]
    assert "sql*" in lines[2]
    empty = cli("commands", CONNECTOR_PROXY_ONLY_CONNECTORS="nothing-here")
    assert (empty.returncode, empty.stdout) == (0, "")
    assert "no commands" in empty.stderr


def test_describe_shows_parameters_and_their_rules() -> None:
    result = cli("describe", "pg/Query")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pg/Query\n  Run a query")
    assert "  sql (str; required)" in result.stdout
    assert '"minimum": 1' in result.stdout and '"maximum": 100000' in result.stdout
    secret = cli("describe", "http/GetRequestV2")
    assert "  bearer_token (str; optional, secret, default null)" in secret.stdout
    as_json = json.loads(cli("describe", "http/GetRequestV2", "--json").stdout)
    assert as_json["id"] == "http/GetRequestV2"


def test_describe_an_unknown_command_suggests_close_ones() -> None:
    result = cli("describe", "http/GetRequest2")
    assert result.returncode == 1
    assert "no command http/GetRequest2 (did you mean http/GetRequestV2" in result.stderr


def test_check_passes_and_can_require_commands() -> None:
    result = cli("check", "--require", "http/GetRequestV2", "--require", "pg/Query")
    assert result.returncode == 0, result.stderr
    assert "3 connector(s) (email, http, pg), 10 command(s), 0 auth(s)" in result.stdout
    assert result.stdout.rstrip().endswith("ok")
    missing = cli("check", "--require", "acme/Nothing")
    assert missing.returncode == 1
    assert "missing command(s): acme/Nothing" in missing.stderr


def test_check_fails_with_the_reasons_of_a_broken_package(tmp_path: Path) -> None:
    package = tmp_path / "connector_shaky"
    (package / "commands").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "commands" / "__init__.py").write_text("")
    (package / "commands" / "boom.py").write_text("import a_module_that_is_not_installed\n")
    result = cli("check", CONNECTOR_PROXY_CONNECTOR_PATHS=json.dumps([str(tmp_path)]))
    assert result.returncode == 1
    assert "problem(s):" in result.stderr
    assert "connector_shaky" in result.stderr
