"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), working without internet access.

FastAPI's pages load their scripts and styles from a CDN, so on a machine or cluster without
internet access they stay blank. These pages load them from the proxy itself: the assets bundled in
the ``fastapi-offline`` package, served under ``/docs-assets``. Both render the live OpenAPI
document (``/openapi.json``: one operation per installed command).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
ASSETS_DIRECTORY = files("fastapi_offline") / "static"

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """Where the proxy is, as the browser reaches it: ``CONNECTOR_PROXY_PATH_PREFIX`` included (the
    proxy takes the assets' paths with or without it)."""
    settings = getattr(request.app.state, "settings", None)
    prefix: str = getattr(settings, "path_prefix", "") or ""
    root: str = request.scope.get("root_path", "")
    return root + prefix


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
        with_google_fonts=False,
    )


def install_docs(app: FastAPI) -> None:
    """The two pages and their assets (create the app with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=str(ASSETS_DIRECTORY)), name="docs-assets")
    app.include_router(router)
