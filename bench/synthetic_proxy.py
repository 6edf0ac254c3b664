"""Serve the real proxy app with a synthetic catalog of 1,000 SDK commands (10 connectors x 100 commands).

The registry goes through the same path as embedded mode (``load_sdk_connector`` + ``Registry.build``),
so ``GET /v1/commands`` serves what a proxy carrying that many commands would.

As ``connector-proxy serve`` does in each worker, what start-up built is frozen out of the garbage
collector's reach before serving (``--no-gc-freeze``: not, to measure what that saves).

    python bench/synthetic_proxy.py --port 8082 [--no-gc-freeze]
    python bench/synthetic_proxy.py --measure-gc   # a full collection's pause, unfrozen then frozen (JSON)
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import serve_like

from connector_proxy.app import create_app
from connector_proxy.event_loop import freeze_startup_objects
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.loading.results import LoadResult
from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from spiff_connector_sdk import Connector, Context, Param, Result

CONNECTORS = 10
COMMANDS_PER_CONNECTOR = 100

Mode = Literal["fast", "thorough", "dry-run"]


def make_command(connector: int, index: int) -> Callable[..., Any]:
    """One async command with a few typed, described parameters."""

    async def command(
        ctx: Context,
        *,
        record_id: Annotated[str, Param("Identifier of the record to act on.", examples=("rec-001",))],
        count: Annotated[int, Param("How many items to process.")] = 10,
        ratio: Annotated[float | None, Param("Sampling ratio between 0 and 1.")] = None,
        mode: Annotated[Mode, Param("Processing mode.")] = "fast",
        tags: Annotated[list[str] | None, Param("Labels attached to the result.")] = None,
        api_token: Annotated[str | None, Param("Token for the remote service.", secret=True)] = None,
    ) -> Result:
        return Result(body={"record_id": record_id, "count": count, "mode": mode})

    command.__doc__ = f"Synthetic command {index} of connector {connector}, used to size the catalog."
    return command


def make_connector(connector: int) -> Connector:
    built = Connector(f"synthetic{connector:02d}", description=f"Synthetic connector {connector}")
    for index in range(COMMANDS_PER_CONNECTOR):
        built.command(f"Command{index:03d}")(make_command(connector, index))
    return built


def build_embedded() -> EmbeddedConnectors:
    connectors = tuple(make_connector(number) for number in range(CONNECTORS))
    result = LoadResult()
    for connector in connectors:
        result.extend(load_sdk_connector(connector))
    if result.problems:
        raise SystemExit(f"synthetic connectors failed to load: {result.problems[:3]}")
    registry = Registry.build(result.commands, result.auths, revision=1, problems=result.problems)
    return EmbeddedConnectors(registry=registry, connectors=connectors)


def full_collection_pauses(rounds: int = 5) -> dict[str, float]:
    """With this proxy built in this process: how long one full collection (``gc.collect()``) takes,
    the median of ``rounds``, before and after :func:`freeze_startup_objects`. A full collection runs
    on the event loop whenever the collector's thresholds say so: its pause delays every request."""

    def median_ms() -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            gc.collect()
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    app = create_app(Settings(embedded=False, log_level="WARNING"), embedded=build_embedded())
    unfrozen = median_ms()
    freeze_startup_objects()
    frozen = median_ms()
    gc.unfreeze()
    del app
    return {"unfrozen_ms": unfrozen, "frozen_ms": frozen}


def main() -> None:
    parser = argparse.ArgumentParser(description="Proxy with 1,000 synthetic commands.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false")
    parser.add_argument("--measure-gc", action="store_true", help="Print a full collection's pause as JSON.")
    args = parser.parse_args()
    if args.measure_gc:
        print(json.dumps(full_collection_pauses()))
        return
    if args.port is None:
        parser.error("--port is required to serve")
    embedded = build_embedded()
    settings = Settings(host=args.host, port=args.port, embedded=False, log_level="WARNING")
    app = create_app(settings, embedded=embedded)
    if args.gc_freeze:
        freeze_startup_objects()  # the registry and the app are built: what serve's worker freezes
    serve_like.run(app, args.host, args.port)


if __name__ == "__main__":
    main()
