"""Serve an app in one process as a ``connector-proxy serve`` worker serves it: uvicorn with the same
options and HTTP protocol (head bounds, the head written with its body), no supervisor around it."""

from __future__ import annotations

from typing import Any

import uvicorn

from connector_proxy.serving.supervisor import worker_class
from connector_proxy.settings import Settings


def run(app: Any, host: str, port: int) -> None:
    options = worker_class(Settings(log_level="WARNING")).CONFIG_KWARGS
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, **options)
