"""``connector-proxy do``: one command run in process as the proxy runs it, against a real upstream."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request

from connector_proxy.cli.do_verb import UsageError, parameters, request_body
from proxytest.serve_process import run_cli
from proxytest.servers import serve_in_thread


def _upstream() -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items(request: Request) -> dict[str, Any]:
        return {"query": dict(request.query_params), "auth": request.headers.get("authorization")}

    return app


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_in_thread(_upstream()) as url:
        yield url


def cli(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return run_cli("do", *args, **variables)


def test_a_command_runs_and_prints_its_envelope(upstream: str) -> None:
    result = cli("http/GetRequestV2", f"url={upstream}/items", 'params={"page": 2}', "attempts=1")
    assert result.returncode == 0, result.stderr
    envelope = json.loads(result.stdout)
    assert envelope["error"] is None
    assert envelope["command_response"]["body"] == {"query": {"page": "2"}, "auth": None}


def test_the_api_key_and_config_of_the_settings_apply(upstream: str) -> None:
    """With an API key set, do presents it itself; a secret parameter never shows in the output."""
    result = cli(
        "http/GetRequestV2",
        "--params",
        json.dumps({"url": f"{upstream}/items", "bearer_token": "tok-SECRETISH"}),
        CONNECTOR_PROXY_API_KEY="local-key",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["command_response"]["body"]["auth"] == "Bearer tok-SECRETISH"


def test_a_command_error_exits_1_with_the_envelope() -> None:
    result = cli("pg/Query", "sql=SELECT 1")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["error_code"] == "ConnectionNotConfigured"
    refused = cli("pg/Query", "sql=SELECT 1", "max_rows=0")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"] == {
        "error_code": "invalid_parameter",
        "message": "Invalid parameter(s) for pg/Query: max_rows: must satisfy minimum 1.",
    }
    unknown = cli("acme/Nothing")
    assert unknown.returncode == 1
    assert "no command acme/Nothing" in unknown.stderr


def test_a_bad_invocation_exits_2() -> None:
    result = cli("http/GetRequestV2", "no-equals-sign")
    assert result.returncode == 2
    assert "'no-equals-sign' is not key=value" in result.stderr


def test_values_are_json_when_they_are_json() -> None:
    found = parameters(
        ["days=3", "city=Lyon", 'tags=["a"]', "flag=true", "empty=", "text=a=b"], '{"days": 1, "x": null}'
    )
    assert found == {"days": 3, "city": "Lyon", "tags": ["a"], "flag": True, "empty": "", "text": "a=b", "x": None}
    assert request_body({"a": 1}, '{"k": "v"}') == {"a": 1, "spiff__task_data": {"k": "v"}}
    with pytest.raises(UsageError, match="--params must be a JSON object"):
        parameters([], "[1]")
    with pytest.raises(UsageError, match="--task-data must be a JSON object"):
        request_body({}, "3")
