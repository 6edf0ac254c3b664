"""Liveness and the registry's status."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from connector_proxy.state import proxy_state

router = APIRouter(tags=["health"])
_OK = b'{"ok":true}'


@router.get("/v1/liveness", summary="Liveness (never needs the API key)")
async def liveness() -> Response:
    return Response(content=_OK, media_type="application/json")


@router.get("/liveness", include_in_schema=False)
async def liveness_reference_path() -> Response:
    return Response(content=_OK, media_type="application/json")


@router.get(
    "/v1/readiness",
    summary="Readiness: 200 once the registry is loaded (Kubernetes mode: after the first list)",
    responses={503: {"description": "Kubernetes mode: the first list of Connectors has not succeeded yet."}},
)
async def readiness(request: Request) -> Response:
    state = proxy_state(request)
    body: dict[str, Any] = {"ready": state.ready, "revision": state.registry.revision}
    if state.watch_state is not None:
        body["kubernetes"] = state.watch_state.as_dict()
    return Response(content=orjson.dumps(body), status_code=200 if state.ready else 503, media_type="application/json")


@router.get(
    "/metrics",
    summary="Prometheus metrics (open, like liveness)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "Metrics."}},
)
async def metrics(request: Request) -> Response:
    registry = proxy_state(request).metrics.registry
    return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/status", summary="Registry revision, counts and load problems")
async def status(request: Request) -> dict[str, Any]:
    state = proxy_state(request)
    registry = state.registry
    return {
        "revision": registry.revision,
        "commands": len(registry.commands),
        "auths": len(registry.auths),
        "connectors": sorted({c.connector for c in registry.commands.values()}),
        "problems": list(registry.problems),
        "sources": [choice.as_dict() for choice in registry.sources],
        "kubernetes": state.watch_state.as_dict() if state.watch_state is not None else None,
        "isolation": dict(isolation.describe()) if (isolation := state.runtime.isolation) else {"mode": "thread"},
    }
