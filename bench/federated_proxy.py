"""Serve a front proxy in Kubernetes mode's shape, without a Kubernetes API: one Ready Connector whose
workload is the connector runtime at ``--runtime`` (a plain ``connector-proxy serve``).

The Connector object is the one the operator would leave Ready for a url-sourced Connector (status
endpoint + the runtime's own ``GET /v1/commands``); it goes through ``RemoteRegistryBuilder`` and is
swapped into an app built by ``create_app`` with no embedded connectors, so ``/v1/do`` takes the real
forwarding path (``RemoteCommand`` over one pooled ``Forwarder``). uvicorn serves it with the HTTP
protocol ``connector-proxy serve`` gives its workers.

    python bench/federated_proxy.py --port 8083 --runtime http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import serve_like
from fastapi import FastAPI

from connector_proxy.app import create_app
from connector_proxy.event_loop import freeze_startup_objects
from connector_proxy.kubernetes.forwarding import Forwarder
from connector_proxy.kubernetes.registry import RemoteRegistryBuilder
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings


def runtime_catalog(runtime: str, wait_s: float) -> list[dict[str, Any]]:
    """The runtime's ``GET /v1/commands``, waiting up to ``wait_s`` for it to come up (it starts alongside)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(f"{runtime}/v1/commands", timeout=10) as answer:
                catalog: list[dict[str, Any]] = json.loads(answer.read())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the runtime at {runtime} did not answer within {wait_s:g} s") from None
            time.sleep(0.1)
    if not catalog:
        raise SystemExit(f"the runtime at {runtime} lists no commands")
    return catalog


def ready_connector(runtime: str, commands: list[dict[str, Any]]) -> dict[str, Any]:
    """A url-sourced Connector as the operator leaves it once Ready."""
    return {
        "apiVersion": "connectors.spiffworkflow.org/v1alpha1",
        "kind": "Connector",
        "metadata": {"namespace": "bench", "name": "runtime", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"source": {"url": {"endpoint": runtime}}, "timeoutSeconds": 40, "concurrency": 64},
        "status": {
            "endpoint": runtime,
            "commands": commands,
            "auths": [],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def build_app(runtime: str, host: str, port: int, wait_s: float) -> FastAPI:
    forwarder = Forwarder()  # its httpx client is created lazily, on uvicorn's loop, at the first forward
    connector = ready_connector(runtime, runtime_catalog(runtime, wait_s))
    registry = RemoteRegistryBuilder(forwarder).build([connector], revision=1)
    settings = Settings(host=host, port=port, embedded=False, log_level="WARNING")
    app = create_app(settings, embedded=EmbeddedConnectors(registry=Registry.empty(), connectors=()))
    app.state.proxy.swap(registry)
    # create_app closes its own Forwarder on shutdown; the registry's commands use ours, so close that one too.
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[None]:
        async with inner(served):
            try:
                yield
            finally:
                await forwarder.aclose()

    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Front proxy forwarding to one connector runtime.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runtime", required=True, help="Base URL of the runtime (a connector-proxy serve).")
    parser.add_argument("--runtime-timeout", type=float, default=60.0, help="Seconds to wait for the runtime.")
    args = parser.parse_args()
    app = build_app(args.runtime.rstrip("/"), args.host, args.port, args.runtime_timeout)
    freeze_startup_objects()  # as serve's worker does once its app has started
    serve_like.run(app, args.host, args.port)


if __name__ == "__main__":
    main()
