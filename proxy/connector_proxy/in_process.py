"""A request to the proxy app handled in this process: its lifespan entered, no port opened.

What ``connector-proxy do`` and ``spiff_connector_sdk.testing`` run a command with, so that a local
run binds, validates and answers as ``serve`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI

BASE_URL = "http://connector-proxy"


async def post_in_process(
    app: FastAPI, path: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """POST ``body`` as JSON to ``path`` of ``app``, inside the app's lifespan, from 127.0.0.1."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return await client.post(path, json=dict(body), headers=dict(headers or {}), timeout=None)
