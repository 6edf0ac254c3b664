"""The proxy presents its ServiceAccount token to the workloads the operator runs (pip and image
sources), re-read when the kubelet rotates it, and never to a url source (another party's proxy).
Real fake-workload servers on 127.0.0.1 that echo the headers they got."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from connector_proxy.execution import Runtime
from connector_proxy.kubernetes.forwarding import Forwarder, RemoteCommand
from connector_proxy.kubernetes.registry import RemoteRegistryBuilder
from connector_proxy.secret_files import MountedKey
from proxytest.fake_workload import fake_workload
from proxytest.servers import serve_in_thread

NS = "spiff"


def connector(name: str, endpoint: str, source: str) -> dict[str, Any]:
    sources = {
        "url": {"url": {"endpoint": endpoint}},
        "pip": {"pip": {"requirements": ["connector-example"]}},
        "image": {"image": {"ref": "registry.example/connector:1"}},
    }
    status = {
        "endpoint": endpoint,
        "commands": [{"id": f"{name}/Echo", "parameters": []}],
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    metadata = {"namespace": NS, "name": name, "creationTimestamp": "2025-01-01T00:00:00Z"}
    return {"metadata": metadata, "spec": {"source": sources[source]}, "status": status}


async def headers_seen(command: RemoteCommand, runtime: Runtime) -> dict[str, str]:
    outcome = await command.run(b"{}", runtime)
    assert outcome.status == 200, outcome.body
    seen: dict[str, str] = json.loads(outcome.body)["command_response"]["body"]["headers"]
    return seen


def command_of(builder: RemoteRegistryBuilder, obj: dict[str, Any]) -> RemoteCommand:
    command = builder.build([obj], revision=1).commands[f"{obj['metadata']['name']}/Echo"]
    assert isinstance(command, RemoteCommand)
    return command


@pytest.mark.parametrize("source", ["pip", "image"])
async def test_workloads_the_operator_runs_get_the_current_token(
    source: str, servers: ExitStack, runtime: Runtime, forwarder: Forwarder, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    workload = servers.enter_context(serve_in_thread(fake_workload("w", ["w/Echo"])))
    builder = RemoteRegistryBuilder(forwarder, workload_token=MountedKey(token_file))
    command = command_of(builder, connector("w", workload, source))
    assert (await headers_seen(command, runtime))["authorization"] == "Bearer first-token"
    token_file.write_text("renewed-token\n")  # the kubelet rotates the projected token
    assert (await headers_seen(command, runtime))["authorization"] == "Bearer renewed-token"


async def test_a_url_source_never_gets_the_token(
    servers: ExitStack, runtime: Runtime, forwarder: Forwarder, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("not-for-strangers\n")
    other_proxy = servers.enter_context(serve_in_thread(fake_workload("fed", ["fed/Echo"])))
    builder = RemoteRegistryBuilder(forwarder, workload_token=MountedKey(token_file))
    assert "authorization" not in await headers_seen(command_of(builder, connector("fed", other_proxy, "url")), runtime)


async def test_without_a_token_file_nothing_is_sent(servers: ExitStack, runtime: Runtime, forwarder: Forwarder) -> None:
    workload = servers.enter_context(serve_in_thread(fake_workload("w", ["w/Echo"])))
    command = command_of(RemoteRegistryBuilder(forwarder), connector("w", workload, "pip"))
    assert "authorization" not in await headers_seen(command, runtime)
