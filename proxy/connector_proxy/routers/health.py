"""Liveness and the registry's status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
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


@router.get("/v1/status", summary="Registry revision, counts and load problems")
async def status(request: Request) -> dict[str, Any]:
    registry = proxy_state(request).registry
    return {
        "revision": registry.revision,
        "commands": len(registry.commands),
        "auths": len(registry.auths),
        "connectors": sorted({c.connector for c in registry.commands.values()}),
        "problems": list(registry.problems),
    }
