"""The fast path and the FastAPI routes answer the hot endpoints with the same functions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from connector_proxy.app import create_app
from connector_proxy.catalog import CatalogSnapshot
from connector_proxy.dispatch import Answer, as_response, catalog_answer
from connector_proxy.settings import Settings


@pytest.fixture
async def both_paths(community_site: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The same app twice: as served (fast path first) and FastAPI's own stack without it (no
    lifespan is needed: the registry and the runtime are built by the factory)."""
    app = create_app(Settings(connector_paths=[community_site]))
    stack = FastAPI.build_middleware_stack(app)

    async def routers_only(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # what FastAPI.__call__ sets before its stack runs
        await stack(scope, receive, send)

    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://proxy") as fast,
        httpx.AsyncClient(transport=httpx.ASGITransport(routers_only), base_url="http://proxy") as routed,
    ):
        yield fast, routed


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("GET", "/v1/commands", {}, None),
        ("GET", "/v1/commands", {"accept-encoding": "gzip"}, None),
        ("GET", "/v1/auths", {}, None),
        ("POST", "/v1/do/example/Echo", {"content-type": "application/json"}, b'{"message": "m"}'),
        ("POST", "/v1/do/example/Echo", {"content-type": "application/json"}, b"[]"),
        ("POST", "/v1/do/nope/Nope", {}, b"{}"),
    ],
)
async def test_the_routes_answer_what_the_fast_path_answers(
    both_paths: tuple[httpx.AsyncClient, httpx.AsyncClient],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    fast, routed = both_paths
    a = await fast.request(method, path, headers=headers, content=body)
    b = await routed.request(method, path, headers=headers, content=body)
    assert (a.status_code, a.content) == (b.status_code, b.content)
    for name in ("content-type", "content-length", "etag", "cache-control", "vary", "content-encoding"):
        assert a.headers.get(name) == b.headers.get(name), name


SNAPSHOT = CatalogSnapshot.build([{"id": "a/B", "parameters": []}])


@pytest.mark.parametrize(
    ("if_none_match", "accept_encoding", "status", "gzipped"),
    [
        (None, None, 200, False),
        (None, "gzip, br", 200, True),
        (None, "gzip;q=0", 200, False),
        (SNAPSHOT.etag, None, 304, False),
        (f"W/{SNAPSHOT.etag}", "gzip", 304, False),
        ('"other"', None, 200, False),
        ("*", None, 304, False),
    ],
)
def test_catalog_answer(if_none_match: str | None, accept_encoding: str | None, status: int, gzipped: bool) -> None:
    answer = catalog_answer(SNAPSHOT, if_none_match, accept_encoding)
    assert answer.status == status
    assert (b"etag", SNAPSHOT.etag.encode()) in answer.headers
    assert ((b"content-encoding", b"gzip") in answer.headers) is gzipped
    if status == 304:
        assert (answer.body, answer.content_type) == (b"", None)
    else:
        assert answer.body == (SNAPSHOT.gzip_body if gzipped else SNAPSHOT.body)


def test_as_response_keeps_status_body_and_every_header() -> None:
    answer = Answer(202, b'{"x":1}', b"application/json", ((b"etag", b'"e"'),))
    response = as_response(answer)
    assert response.status_code == 202
    assert response.body == answer.body
    headers = dict(response.raw_headers)
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"etag"] == b'"e"'
    assert headers[b"content-length"] == b"7"
