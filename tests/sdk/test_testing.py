"""spiff_connector_sdk.testing: a command called in a plain test answers as the proxy would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import pytest

from spiff_connector_sdk import CommandError, Connector, Context, Param, Result
from spiff_connector_sdk.testing import acall, call

EVENTS: list[str] = []


@asynccontextmanager
async def _lifespan() -> AsyncIterator[None]:
    EVENTS.append("start")
    yield
    EVENTS.append("stop")


greeter = Connector("greeter", lifespan=_lifespan)


@greeter.command("Hello")
async def hello(
    ctx: Context,
    *,
    name: Annotated[str, Param("Who", schema={"minLength": 1, "maxLength": 10})],
    times: Annotated[int, Param("How often", schema={"minimum": 1, "maximum": 3})] = 1,
) -> Result:
    """Greet somebody."""
    if name == "Nobody":
        raise CommandError("NoSuchPerson", "nobody to greet")
    ctx.log(f"greeting {times} time(s)")
    greeting = ctx.config.get("GREETING", "Hello")
    return Result(body={"text": " ".join([f"{greeting} {name}"] * times), "data": dict(ctx.task_data)})


def test_a_call_answers_the_proxys_envelope() -> None:
    EVENTS.clear()
    answer = call(greeter, "Hello", {"name": "Ada", "times": 2}, config={"GREETING": "Hi"}, task_data={"k": 1})
    assert answer.status == 200
    assert answer.error is None and answer.error_code is None
    assert answer.body == {"text": "Hi Ada Hi Ada", "data": {"k": 1}}
    assert answer.logs == ["greeting 2 time(s)"]
    assert answer.envelope["command_response_version"] == 2
    assert EVENTS == ["start", "stop"]  # the connector's lifespan, as the proxy enters it


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "missing_parameter"),
        ({"name": "Ada", "extra": 1}, 400, "unknown_parameter"),
        ({"name": "Ada", "times": "2"}, 400, "invalid_parameter"),
        ({"name": "Ada", "times": 4}, 400, "invalid_parameter"),
        ({"name": "Nobody"}, 200, "NoSuchPerson"),
    ],
)
def test_errors_have_the_proxys_status_and_codes(params: dict[str, object], status: int, code: str) -> None:
    answer = call(greeter, "Hello", params)
    assert (answer.status, answer.error_code) == (status, code)


async def test_acall_from_an_async_test() -> None:
    answer = await acall(greeter, "Hello", {"name": "Bo"})
    assert answer.body["text"] == "Hello Bo"
    assert (await acall(greeter, "Missing")).error_code == "command_not_found"


def test_a_connector_the_proxy_cannot_load_is_reported() -> None:
    broken = Connector("broken")

    @broken.command("Bad")
    def bad(*, count: int = 1) -> Result:  # no positional context parameter
        return Result()

    with pytest.raises(ValueError, match="the proxy cannot load this connector: broken/Bad cannot be described"):
        call(broken, "Bad")
