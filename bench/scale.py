"""Kubernetes mode at cluster scale: 500 Connectors of 20 commands each (10,000 commands).

The Connectors and their catalog ConfigMaps are built as the operator leaves them (a ``status`` naming
a gzipped catalog ConfigMap by its hash; each command an SDK-shaped entry with five typed, documented
parameters) and turned into a registry by the proxy's own path: ``ConnectorCatalogs.attach`` (decode
and verify each ConfigMap) then ``RemoteRegistryBuilder.build``. No Kubernetes API is involved: what
is measured is the proxy's own work per change.

- ``measure()``: the first build (every ConfigMap decoded), then one Connector's catalog changing
  ``--changes`` times (a new ConfigMap and status for it, the registry rebuilt over all 500: what a
  proxy does on that watch event), and the memory the registry holds (tracemalloc).
- ``--port``: serve that registry (``GET /v1/commands``, identity and gzip) for wrk.

    python bench/scale.py [--changes 20]
    python bench/scale.py --port 8085
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONNECTORS = 500
COMMANDS_PER_CONNECTOR = 20
NAMESPACE = "bench"


def _entry() -> dict[str, Any]:
    """One SDK command's catalog entry, five typed and documented parameters: the test suite's
    ``proxytest.catalogs.sdk_entry`` (the shape its 5,000-command tests use too)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from proxytest.catalogs import sdk_entry

    return sdk_entry()


def connector_objects(generation: int = 0, changed: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The 500 Connectors and their catalog ConfigMaps, keyed ``<namespace>/<name>``; ``changed``: the
    index of the Connector whose catalog is at ``generation`` (the others at 0)."""
    from connector_proxy.catalog_map import CATALOG_KEY, catalog_hash, encode_catalog

    template = _entry()
    connectors: dict[str, Any] = {}
    maps: dict[str, Any] = {}
    for index in range(CONNECTORS):
        connectors[f"{NAMESPACE}/c{index:03d}"], maps[f"{NAMESPACE}/c{index:03d}-catalog"] = _pair(
            index, generation if index == changed else 0, template, CATALOG_KEY, catalog_hash, encode_catalog
        )
    return connectors, maps


def _pair(index: int, generation: int, template: dict[str, Any], key: str, digest: Any, encode: Any) -> Any:
    commands = [
        {**template, "id": f"c{index:03d}/Command{n:02d}", "description": f"Command {n} (catalog {generation})."}
        for n in range(COMMANDS_PER_CONNECTOR)
    ]
    name = f"c{index:03d}"
    config_map = {
        "metadata": {"namespace": NAMESPACE, "name": f"{name}-catalog", "resourceVersion": f"{index}.{generation}"},
        "binaryData": {key: base64.b64encode(encode(commands, [])).decode()},
    }
    connector = {
        "metadata": {"namespace": NAMESPACE, "name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {},
        "status": {
            "endpoint": f"http://{name}.{NAMESPACE}:7004",
            "catalogConfigMap": f"{name}-catalog",
            "catalogHash": digest(commands, []),
            "commandCount": len(commands),
        },
    }
    return connector, config_map


def measure(changes: int = 20) -> dict[str, Any]:
    from connector_proxy.kubernetes.catalogs import ConnectorCatalogs
    from connector_proxy.kubernetes.forwarding import Forwarder
    from connector_proxy.kubernetes.registry import RemoteRegistryBuilder

    connectors, maps = connector_objects()
    catalogs, builder = ConnectorCatalogs(), RemoteRegistryBuilder(Forwarder())
    started = time.perf_counter()
    registry = builder.build(catalogs.attach(connectors, maps), revision=1)
    first_ms = (time.perf_counter() - started) * 1000
    held = _held_bytes(connectors, maps)
    samples = []
    for generation in range(1, changes + 1):
        changed = generation % CONNECTORS
        connector, config_map = _pair_for(changed, generation)
        connectors[f"{NAMESPACE}/c{changed:03d}"] = connector
        maps[f"{NAMESPACE}/c{changed:03d}-catalog"] = config_map
        started = time.perf_counter()
        registry = builder.build(catalogs.attach(connectors, maps), revision=generation + 1)
        samples.append((time.perf_counter() - started) * 1000)
        expected = f"Command 0 (catalog {generation})."
        if registry.commands[f"c{changed:03d}/Command00"].catalog_entry()["description"] != expected:
            raise SystemExit("the rebuilt registry does not hold the changed catalog")
    return {
        "connectors": CONNECTORS,
        "commands": len(registry.commands),
        "first_build_ms": first_ms,
        "change_ms": samples,
        "change_ms_median": statistics.median(samples),
        "change_ms_max": max(samples),
        "registry_bytes": held,
        "catalog_bytes": len(registry.commands_catalog.body),
        "catalog_gzip_bytes": len(registry.commands_catalog.gzip_body),
    }


def _held_bytes(connectors: dict[str, Any], maps: dict[str, Any]) -> int:
    """What a proxy's registry of these Connectors holds (tracemalloc, a build of its own): the
    decoded catalogs, the commands, the catalog's JSON and gzip and each entry's kept JSON."""
    from connector_proxy.kubernetes.catalogs import ConnectorCatalogs
    from connector_proxy.kubernetes.forwarding import Forwarder
    from connector_proxy.kubernetes.registry import RemoteRegistryBuilder

    gc.collect()
    tracemalloc.start()
    try:
        catalogs, builder = ConnectorCatalogs(), RemoteRegistryBuilder(Forwarder())
        registry = builder.build(catalogs.attach(connectors, maps), revision=1)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del registry, catalogs, builder
    return held


_TEMPLATE: dict[str, Any] = {}


def _pair_for(index: int, generation: int) -> Any:
    from connector_proxy.catalog_map import CATALOG_KEY, catalog_hash, encode_catalog

    if not _TEMPLATE:
        _TEMPLATE.update(_entry())
    return _pair(index, generation, _TEMPLATE, CATALOG_KEY, catalog_hash, encode_catalog)


def serve(host: str, port: int) -> None:
    import serve_like

    from connector_proxy.app import create_app
    from connector_proxy.event_loop import freeze_startup_objects
    from connector_proxy.kubernetes.catalogs import ConnectorCatalogs
    from connector_proxy.kubernetes.forwarding import Forwarder
    from connector_proxy.kubernetes.registry import RemoteRegistryBuilder
    from connector_proxy.loading.embedded import EmbeddedConnectors
    from connector_proxy.registry import Registry
    from connector_proxy.settings import Settings

    connectors, maps = connector_objects()
    registry = RemoteRegistryBuilder(Forwarder()).build(ConnectorCatalogs().attach(connectors, maps), revision=1)
    settings = Settings(host=host, port=port, embedded=False, log_level="WARNING")
    app = create_app(settings, embedded=EmbeddedConnectors(registry=Registry.empty(), connectors=()))
    app.state.proxy.swap(registry)
    freeze_startup_objects()
    serve_like.run(app, host, port)


def main() -> int:
    sys.path.insert(0, str(ROOT / "proxy"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="Serve the registry instead of measuring its rebuilds.")
    args = parser.parse_args()
    if args.port is not None:
        serve(args.host, args.port)
        return 0
    print(json.dumps(measure(args.changes), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
