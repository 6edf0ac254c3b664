"""A small SDK connector whose commands succeed and fail in every way a command can, and a proxy
app serving only it (for the metrics, log and forwarding tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI

from connector_proxy.settings import Settings
from proxytest.oauth_support import build_app
from spiff_connector_sdk import CommandError, Connector, Context, ErrorInfo, Param, Result

shop = Connector("shop")


@shop.command("Buy")
async def buy(ctx: Context, item: Annotated[str, Param("What", schema={"maxLength": 30})]) -> Result:
    if item == "missing":
        raise CommandError("ItemNotFound", "No such item.", http_status=404)
    if item == "gone":
        return Result(body={"error": "gone"}, http_status=410)
    if item == "declined":
        return Result(body={}, error=ErrorInfo("PaymentDeclined", "Declined."))
    return Result(body={"bought": item})


@shop.command("Fail")
async def fail(ctx: Context, code: str) -> Result:
    raise CommandError(code, "failed")


def shop_app() -> FastAPI:
    """A proxy serving only the shop connector."""
    app: FastAPI = build_app(Settings(), [], (shop,))
    return app
