"""A fake connector workload: serves the protocol and tells who it is and what it received."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def fake_workload(
    name: str,
    commands: list[str],
    *,
    release: threading.Event | None = None,
    catalog: list[dict[str, Any]] | None = None,
) -> FastAPI:
    """``/v1/do/<id>`` answers a v2 envelope naming this workload and the headers it got; the
    command ``.../Slow`` waits for ``release`` (bounded) first; ``.../Bad`` answers 400;
    ``.../Later`` answers 202. Every answer sets a cookie (a forwarding client must not keep it).
    ``catalog``: the ``/v1/commands`` to serve, instead of one entry per id of ``commands``."""
    app = FastAPI()
    if catalog is None:
        catalog = [{"id": c, "parameters": [{"id": "x", "type": "any", "required": False}]} for c in commands]

    @app.get("/v1/commands")
    async def list_commands() -> list[dict[str, Any]]:
        return catalog

    @app.get("/v1/auths")
    async def list_auths() -> list[dict[str, Any]]:
        return []

    @app.get("/v1/liveness")
    async def liveness() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v1/do/{connector}/{command}")
    async def do(connector: str, command: str, request: Request) -> JSONResponse:
        if command == "Slow" and release is not None:
            await asyncio.to_thread(release.wait, 30)
        body = {
            "command_response": {
                "body": {
                    "workload": name,
                    "command": f"{connector}/{command}",
                    "received": (await request.body()).decode(),
                    "headers": {k.lower(): v for k, v in request.headers.items()},
                },
                "mimetype": "application/json",
            },
            "command_response_version": 2,
            "error": None,
            "spiff__logs": [],
        }
        if command == "Bad":
            return JSONResponse(
                {"command_response": {}, "error": {"error_code": "missing_parameter", "message": "x"}}, 400
            )
        answer = JSONResponse(body, status_code=202 if command == "Later" else 200)
        answer.set_cookie("workload-session", f"{name}-session")
        return answer

    return app
