"""The bundled HTTP connector end to end: spiff-arena's request → proxy → a real upstream on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from proxytest.protocol import validate_do_response
from proxytest.servers import free_port, serve_in_thread


def _upstream() -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items(request: Request) -> JSONResponse:
        return JSONResponse({"items": [1, 2], "query": dict(request.query_params)})

    @app.post("/items")
    async def create(request: Request) -> JSONResponse:
        return JSONResponse({"created": await request.json()}, status_code=201)

    @app.get("/missing")
    async def missing() -> JSONResponse:
        return JSONResponse({"detail": "nope"}, status_code=404)

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("plain words")

    return app


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_in_thread(_upstream()) as url:
        yield url


SPIFF_KEYS = {
    "spiff__process_instance_id": 42,
    "spiff__process_model_identifier": "group/model",
    "spiff__task_id": "a9b1c2",
    "spiff__task_data": {"x": 1},
    "spiff__callback_url": "http://127.0.0.1:1/callback",
}


def do(client: httpx.Client, command: str, body: dict[str, object]) -> httpx.Response:
    response = client.post(f"/v1/do/http/{command}", json={**body, **SPIFF_KEYS})
    validate_do_response(response.status_code, response.json())
    return response


def test_get_json(client: httpx.Client, upstream: str) -> None:
    response = do(client, "GetRequestV2", {"url": f"{upstream}/items", "params": {"page": "2"}})
    assert response.status_code == 200
    body = response.json()
    assert body["error"] is None
    assert body["command_response"]["http_status"] == 200
    assert body["command_response"]["body"] == {"items": [1, 2], "query": {"page": "2"}}
    assert body["command_response"]["mimetype"] == "application/json"


def test_post_json(client: httpx.Client, upstream: str) -> None:
    response = do(client, "PostRequestV2", {"url": f"{upstream}/items", "data": {"name": "n"}})
    body = response.json()
    assert body["command_response"]["http_status"] == 201
    assert body["command_response"]["body"] == {"created": {"name": "n"}}


def test_upstream_error_status_sets_error_code(client: httpx.Client, upstream: str) -> None:
    body = do(client, "GetRequestV2", {"url": f"{upstream}/missing"}).json()
    assert body["error"]["error_code"] == "HttpError404"
    assert body["command_response"]["http_status"] == 404


def test_text_is_wrapped_as_raw_response(client: httpx.Client, upstream: str) -> None:
    body = do(client, "GetRequestV2", {"url": f"{upstream}/text"}).json()
    assert body["command_response"]["body"] == {"raw_response": "plain words"}


def test_unreachable_upstream(client: httpx.Client) -> None:
    body = do(client, "GetRequestV2", {"url": f"http://127.0.0.1:{free_port()}/", "attempts": 2}).json()
    assert body["error"]["error_code"] == "ConnectionError"
    assert body["command_response"]["http_status"] == 500


def test_secret_never_echoed(client: httpx.Client, upstream: str) -> None:
    secret = "pa55-w0rd-xyz"
    response = do(
        client,
        "GetRequestV2",
        {"url": f"{upstream}/missing?token={secret}", "basic_auth_username": "u", "basic_auth_password": secret},
    )
    assert secret not in response.text


def test_required_url(client: httpx.Client) -> None:
    response = do(client, "GetRequestV2", {})
    assert response.status_code == 400
    assert response.json()["error"]["error_code"] == "missing_parameter"


def test_integers_beyond_64_bits_reach_the_upstream_and_come_back_exact(client: httpx.Client, upstream: str) -> None:
    big = {"unsigned": 18446744073709551616, "negative": -9223372036854775809, "huge": 10**30}
    payload = json.dumps({"url": f"{upstream}/items", "data": big})
    response = client.post("/v1/do/http/PostRequestV2", content=payload, headers={"content-type": "application/json"})
    body = response.json()
    assert body["command_response"]["body"] == {"created": big}
    assert all(type(v) is int for v in body["command_response"]["body"]["created"].values())
