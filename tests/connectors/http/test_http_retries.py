"""Retries on 5xx and transport errors, timeouts, refused connections and the backoff schedule."""

from __future__ import annotations

import math
from typing import Any

import pytest

from spiff_connector_http import execute
from spiff_connector_http.commands import delete_request, get_request, post_request
from spiff_connector_http.execute import backoff_delay
from spiff_connector_http.request import clamp_attempts, effective_timeout
from spiff_connector_sdk import Context


async def test_5xx_is_retried_until_it_succeeds(server: Any, ctx: Context) -> None:
    result = await get_request(ctx, url=server.url("/flaky/a?fail=2&code=503"), attempts=3)
    assert result.error is None
    assert (result.http_status, result.body) == (200, {"attempt": 3})
    assert server.calls("/flaky/a") == 3
    assert len(ctx.logs) == 3
    assert ctx.logs[0] == f"GET {server.url('/flaky/a')} attempt 1/3 → 503"
    assert ctx.logs[2].endswith("attempt 3/3 → 200")


async def test_5xx_is_retried_at_most_attempts_times(server: Any, ctx: Context) -> None:
    result = await post_request(ctx, url=server.url("/flaky/b?fail=99&code=503"), data={"x": 1}, attempts=3)
    assert server.calls("/flaky/b") == 3
    assert result.http_status == 503
    assert result.body == {"attempt": 3}
    assert result.error is not None
    assert result.error.code == "HttpError503"
    assert (
        result.error.message == f"POST {server.url('/flaky/b')} returned HTTP 503 Service Unavailable after 3 attempts"
    )


async def test_single_attempt_by_default(server: Any, ctx: Context) -> None:
    result = await get_request(ctx, url=server.url("/flaky/c?fail=1&code=500"))
    assert server.calls("/flaky/c") == 1
    assert result.error is not None
    assert result.error.code == "HttpError500"


@pytest.mark.parametrize("code", [400, 404, 409, 429])
async def test_4xx_is_not_retried(server: Any, code: int) -> None:
    path = f"/flaky/d{code}"
    result = await delete_request(Context(), url=server.url(f"{path}?fail=9&code={code}"), attempts=5)
    assert server.calls(path) == 1
    assert result.http_status == code
    assert result.body == {"attempt": 1}
    assert result.error is not None
    assert result.error.code == f"HttpError{code}"


async def test_connection_refused(closed_port: int, ctx: Context) -> None:
    url = f"http://127.0.0.1:{closed_port}/anything"
    result = await get_request(ctx, url=url, attempts=2)
    assert result.http_status == 500
    assert result.body == {}
    assert result.error is not None
    assert result.error.code == "ConnectionError"
    assert result.error.message.startswith(f"GET {url} failed after 2 attempts: ConnectError")
    assert ctx.logs == [f"GET {url} attempt 1/2 → ConnectionError", f"GET {url} attempt 2/2 → ConnectionError"]


async def test_timeout(server: Any, ctx: Context) -> None:
    result = await get_request(ctx, url=server.url("/slow?seconds=1"), timeout=0.2)
    assert result.http_status == 500
    assert result.body == {}
    assert result.error is not None
    assert result.error.code == "ReadTimeout"
    assert "no answer within 0.2 s" in result.error.message
    assert ctx.logs == [f"GET {server.url('/slow')} attempt 1/1 → ReadTimeout"]


async def test_timeouts_are_retried(server: Any, ctx: Context) -> None:
    result = await get_request(ctx, url=server.url("/slow?seconds=0.5"), timeout=0.1, attempts=2)
    assert result.error is not None
    assert result.error.code == "ReadTimeout"
    assert len(ctx.logs) == 2


async def test_broken_bodies_are_retried(server: Any, ctx: Context) -> None:
    result = await get_request(ctx, url=server.url("/short"), attempts=2)
    assert result.error is not None
    assert result.error.code == "ChunkedEncodingError"
    assert len(ctx.logs) == 2


@pytest.mark.parametrize(("url", "code"), [("ftp://127.0.0.1/", "InvalidSchema"), ("127.0.0.1/x", "MissingSchema")])
async def test_invalid_requests_are_not_retried(ctx: Context, url: str, code: str) -> None:
    result = await get_request(ctx, url=url, attempts=3)
    assert result.error is not None
    assert result.error.code == code
    assert len(ctx.logs) == 1
    assert ctx.logs[0].startswith("GET request not sent: ")


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, 1), (-3, 1), (0, 1), (1, 1), (4, 4), (10, 10), (11, 1), (99, 1), ("2", 1), (2.0, 1), (True, 1)],
)
def test_attempts_outside_1_to_10_mean_one(given: Any, expected: int) -> None:
    assert clamp_attempts(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, 30.0), (0, 30.0), (-1, 30.0), (2.5, 2.5), (1000, 300.0), ("5", 30.0), (True, 30.0), (math.nan, 30.0)],
)
def test_timeout_defaults_and_cap(given: Any, expected: float) -> None:
    assert effective_timeout(given) == expected


async def test_ten_attempts_at_most(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execute, "BACKOFF_INITIAL", 0.001)
    monkeypatch.setattr(execute, "BACKOFF_MAX", 0.001)
    result = await get_request(Context(), url=server.url("/flaky/e?fail=99&code=502"), attempts=10)
    assert server.calls("/flaky/e") == 10
    assert result.error is not None
    assert result.error.code == "HttpError502"
