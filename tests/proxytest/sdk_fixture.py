"""An SDK connector used by the tests (built in process, not installed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from spiff_connector_sdk import Accepted, CommandError, Connector, Context, ErrorInfo, Param, Result

LIFESPAN_EVENTS: list[str] = []


@asynccontextmanager
async def _lifespan() -> AsyncIterator[None]:
    LIFESPAN_EVENTS.append("start")
    yield
    LIFESPAN_EVENTS.append("stop")


demo = Connector("sdkdemo", description="Connector used by the test suite", lifespan=_lifespan)


@demo.command("Greet")
async def greet(
    ctx: Context,
    name: Annotated[str, Param("Who to greet", examples=("Ada",))],
    times: Annotated[int, Param("How many greetings")] = 1,
    style: Literal["plain", "loud"] = "plain",
    tags: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    api_token: Annotated[str | None, Param("Token for the greeting service", secret=True)] = None,
) -> Result:
    """Greet somebody, several times.

    The long description is not part of the summary."""
    text = " ".join([f"Hello {name}"] * times)
    ctx.log(f"greeted {times} time(s)")
    if style == "loud":
        text = text.upper()
    return Result(body={"text": text, "tags": tags or [], "task_keys": sorted(ctx.task_data)}, http_status=200)


@demo.command("Fail")
def fail(ctx: Context, code: str, secret: Annotated[str, Param(secret=True)] = "") -> Result:
    """Fail with a chosen error code (sync command, runs in the thread pool)."""
    raise CommandError(code, "The command failed on purpose.", http_status=422)


@demo.command("Crash")
async def crash(ctx: Context, password: Annotated[str, Param(secret=True)]) -> Result:
    """Raise an exception whose text contains the password."""
    raise RuntimeError(f"cannot log in with {password}")


@demo.command("Sleep")
async def sleep(ctx: Context, seconds: float) -> Result:
    """Sleep on the event loop (cancellable)."""
    await asyncio.sleep(seconds)
    return Result(body={"slept": seconds})


@demo.command("ErrorResult")
async def error_result(ctx: Context) -> Result:
    """Return a result carrying an error (outer 200)."""
    return Result(body={}, http_status=409, error=ErrorInfo("Conflict", "It conflicts."))


@demo.command("Start", accepts_callback=True)
async def start(ctx: Context, job: str) -> Result:
    """Start a long-running job; completes through the callback URL."""
    if ctx.callback_url is None:
        return Result(body={"job": job, "mode": "sync"})
    return Accepted(body={"job": job, "callback": ctx.callback_url})


@demo.command("Config")
async def config(ctx: Context, key: str) -> Result:
    """Tell whether a config key is present (never its value)."""
    return Result(body={"present": key in ctx.config})


@demo.command("Raw")
async def raw(ctx: Context, **anything: Any) -> dict[str, Any]:
    """Return a hand-made v2 envelope; takes any parameter."""
    return {
        "command_response": {"body": {"keys": sorted(anything)}, "mimetype": "application/json"},
        "command_response_version": 2,
        "error": None,
        "spiff__logs": [],
    }
