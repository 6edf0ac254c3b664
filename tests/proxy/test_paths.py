"""A proxy URL with a trailing slash or a path prefix: spiff-arena appends /v1/... by concatenation."""

from __future__ import annotations

import httpx
import pytest

from conftest import ProxyFactory
from connector_proxy.paths import normalised


@pytest.mark.parametrize(
    ("path", "prefix", "expected"),
    [
        ("/v1/commands", "", "/v1/commands"),
        ("//v1/commands", "", "/v1/commands"),
        ("///v1//do///http/GetRequestV2", "", "/v1/do/http/GetRequestV2"),
        ("/cp/v1/commands", "/cp", "/v1/commands"),
        ("/cp//v1/commands", "/cp", "/v1/commands"),
        ("//cp/v1/commands", "/cp", "/v1/commands"),
        ("/cp", "/cp", "/"),
        ("/cpx/v1/commands", "/cp", "/cpx/v1/commands"),  # a prefix ends on a segment boundary
        ("/v1/commands", "/cp", "/v1/commands"),  # the bare paths keep working beside a prefix
    ],
)
def test_normalised(path: str, prefix: str, expected: str) -> None:
    assert normalised(path, prefix) == expected


def _raw(base: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    """httpx would normalise the path itself: send it as given."""
    with httpx.Client(timeout=30) as client:
        request = client.build_request(method, base + "/", **kwargs)  # type: ignore[arg-type]
        request.url = request.url.copy_with(raw_path=path.encode())
        return client.send(request)


def test_a_proxy_url_with_a_trailing_slash_serves_everything(start_proxy: ProxyFactory) -> None:
    """It used to answer 404 to //v1/commands, so spiff-arena showed only its built-in commands."""
    base = start_proxy()
    plain = _raw(base, "GET", "/v1/commands")
    doubled = _raw(base, "GET", "//v1/commands")
    assert doubled.status_code == 200 and doubled.content == plain.content
    assert _raw(base, "GET", "//v1/auths").status_code == 200
    do = _raw(base, "POST", "//v1/do/example/Echo", json={"message": "m"})
    assert do.status_code == 200 and do.json()["error"] is None
    assert _raw(base, "GET", "//v1/liveness").json() == {"ok": True}
    assert _raw(base, "GET", "//v1/status").status_code == 200  # a FastAPI route, not the fast path


def test_the_api_key_guards_doubled_slashes_too(start_proxy: ProxyFactory) -> None:
    base = start_proxy(api_key="k3y")
    assert _raw(base, "GET", "//v1/commands").status_code == 401
    assert _raw(base, "POST", "//v1/do/example/Echo", json={"message": "m"}).status_code == 401
    keyed = _raw(base, "GET", "//v1/commands", headers={"Spiff-Connector-Proxy-Api-Key": "k3y"})
    assert keyed.status_code == 200


def test_a_path_prefix_behind_an_ingress(start_proxy: ProxyFactory) -> None:
    base = start_proxy(path_prefix="/connector-proxy")
    assert _raw(base, "GET", "/connector-proxy/v1/commands").status_code == 200
    assert _raw(base, "GET", "/connector-proxy//v1/commands").status_code == 200
    do = _raw(base, "POST", "/connector-proxy/v1/do/example/Echo", json={"message": "m"})
    assert do.status_code == 200 and do.json()["error"] is None
    assert _raw(base, "GET", "/connector-proxy/openapi.json").status_code == 200
    assert _raw(base, "GET", "/v1/commands").status_code == 200
