"""Running the operator: ``connector-proxy operator``."""

from __future__ import annotations

import asyncio
import threading

import kopf

from connector_operator.handlers import register
from connector_operator.settings import OperatorSettings


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    return registry


async def run_operator(
    settings: OperatorSettings,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    liveness: bool = True,
) -> None:
    """Run until cancelled (or ``stop_flag`` is set). One replica: no peering."""
    await kopf.operator(
        registry=build_registry(settings),
        clusterwide=settings.cluster_wide,
        namespaces=settings.namespaces,
        standalone=True,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz" if liveness else None,
    )
