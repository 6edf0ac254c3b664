"""``GET /v1/commands`` and ``GET /v1/auths``: prebuilt bytes with an ETag, no work per request.

:mod:`connector_proxy.fastpath` answers every GET of these paths; these routes declare the OpenAPI
operations and answer what it leaves (``HEAD``), with the same function.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from connector_proxy.catalog import CatalogSnapshot
from connector_proxy.dispatch import as_response, catalog_answer
from connector_proxy.state import proxy_state

router = APIRouter(tags=["catalog"])

_CATALOG_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "The catalog (JSON array of {id, parameters[]}; extra keys are additive metadata)."},
    304: {"description": "Unchanged since the ETag given in If-None-Match."},
    401: {"description": "API key missing or wrong."},
}


def _serve(snapshot: CatalogSnapshot, request: Request) -> Response:
    headers = request.headers
    return as_response(catalog_answer(snapshot, headers.get("if-none-match"), headers.get("accept-encoding")))


@router.get("/v1/commands", summary="List connector commands", responses=_CATALOG_DOC)
async def list_commands(request: Request) -> Response:
    return _serve(proxy_state(request).registry.commands_catalog, request)


@router.get("/v1/auths", summary="List connector authentications", responses=_CATALOG_DOC)
async def list_auths(request: Request) -> Response:
    return _serve(proxy_state(request).registry.auths_catalog, request)
