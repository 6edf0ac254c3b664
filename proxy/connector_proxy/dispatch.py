"""Answering the hot endpoints, shared by the FastAPI routers and the ASGI fast path."""

from __future__ import annotations

import logging
import time

from connector_proxy.catalog import CatalogSnapshot
from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.logging_setup import DO_CHANNEL
from connector_proxy.outcome import Outcome
from connector_proxy.state import ProxyState

logger = logging.getLogger(DO_CHANNEL)
MALFORMED_PATH = DispatchError(
    404,
    ErrorCode.COMMAND_NOT_FOUND,
    "Command ids have the form <connector>/<command>; use /v1/do/<connector>/<command>.",
)


async def dispatch(state: ProxyState, command_id: str, body: bytes) -> Outcome:
    """Run ``command_id`` for a raw request body; every failure becomes its dispatch-error outcome.
    Records the request in the metrics."""
    started = time.perf_counter()
    registry = state.registry  # one snapshot for the whole request
    command = registry.commands.get(command_id)
    try:
        if command is None:
            raise DispatchError(404, ErrorCode.COMMAND_NOT_FOUND, f"No command {command_id} is registered.")
        outcome = await command.run(body, state.runtime)
    except DispatchError as error:
        outcome = Outcome.from_error(error)
        logger.info("command not dispatched", extra={"command": command_id, "error_code": error.code})
    label = command_id if command is not None else "unknown"
    state.metrics.observe(label, outcome.status, outcome.error_code, time.perf_counter() - started)
    return outcome


def catalog_headers(etag: str) -> dict[str, str]:
    return {"etag": etag, "cache-control": "no-cache", "vary": "accept-encoding"}


def catalog_status(snapshot: CatalogSnapshot, if_none_match: str | None) -> int:
    """200 with the prebuilt body, or 304 when the client already holds this snapshot."""
    return 304 if snapshot.matches(if_none_match) else 200
