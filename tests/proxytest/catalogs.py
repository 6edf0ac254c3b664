"""Catalogs the size real connectors reach: the entries a proxy really describes SDK commands with."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from connector_proxy.loading.sdk import load_sdk_connector
from spiff_connector_sdk import Connector, Context, Param, Result


def sdk_entry() -> dict[str, Any]:
    """One command's catalog entry as a proxy really describes an SDK command (typed, documented)."""
    connector = Connector("crm", description="A CRM")

    @connector.command("Lookup")
    async def lookup(
        ctx: Context,
        *,
        record_id: Annotated[str, Param("Identifier of the record to act on.", examples=("rec-001",))],
        count: Annotated[int, Param("How many items to process.")] = 10,
        mode: Annotated[Literal["fast", "thorough"], Param("Processing mode.")] = "fast",
        tags: Annotated[list[str] | None, Param("Labels attached to the result.")] = None,
        api_token: Annotated[str | None, Param("Token for the remote service.", secret=True)] = None,
    ) -> Result:
        """Look a record up and return its fields."""
        return Result(body={})

    loaded = load_sdk_connector(connector)
    return next(iter(loaded.commands)).catalog_entry()


def sdk_catalog(size: int) -> list[dict[str, Any]]:
    """``size`` commands shaped like one SDK command with five typed, documented parameters."""
    entry = sdk_entry()
    return [
        {**entry, "id": f"crm{i // 100:02d}/Lookup{i:05d}", "description": f"Look record kind {i} up."}
        for i in range(size)
    ]
