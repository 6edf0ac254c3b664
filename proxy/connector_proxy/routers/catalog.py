"""``GET /v1/commands`` and ``GET /v1/auths``: prebuilt bytes with an ETag, no work per request."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from connector_proxy.catalog import CatalogSnapshot
from connector_proxy.dispatch import catalog_headers, catalog_status
from connector_proxy.state import proxy_state

router = APIRouter(tags=["catalog"])

_CATALOG_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "The catalog (JSON array of {id, parameters[]}; extra keys are additive metadata)."},
    304: {"description": "Unchanged since the ETag given in If-None-Match."},
    401: {"description": "API key missing or wrong."},
}


def _serve(snapshot: CatalogSnapshot, request: Request) -> Response:
    headers = catalog_headers(snapshot.etag)
    if catalog_status(snapshot, request.headers.get("if-none-match")) == 304:
        return Response(status_code=304, headers=headers)
    body, gzipped = snapshot.encoded(request.headers.get("accept-encoding"))
    if gzipped:
        headers["content-encoding"] = "gzip"
    return Response(content=body, media_type="application/json", headers=headers)


@router.get("/v1/commands", summary="List connector commands", responses=_CATALOG_DOC)
async def list_commands(request: Request) -> Response:
    return _serve(proxy_state(request).registry.commands_catalog, request)


@router.get("/v1/auths", summary="List connector authentications", responses=_CATALOG_DOC)
async def list_auths(request: Request) -> Response:
    return _serve(proxy_state(request).registry.auths_catalog, request)
