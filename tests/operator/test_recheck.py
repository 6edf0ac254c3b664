"""``connector_operator.recheck``: the operator's ``POST /v1/recheck/{namespace}/{name}`` endpoint, a real
aiohttp server on 127.0.0.1, with a recheck that records what it was asked (the reconcile behind it
runs against the real API server in ``tests/e2e/test_operator.py``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from kube.fixtures import eventually

from connector_operator.recheck import RecheckServer
from proxytest.logs import captured_log_text


class Recorder:
    """A recheck that records its calls; holds each one until ``release`` is set, when ``hold``."""

    def __init__(self, *, hold: bool = False, fail: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.cancelled: list[tuple[str, str]] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.fail = fail

    async def __call__(self, namespace: str, name: str) -> None:
        self.calls.append((namespace, name))
        try:
            await asyncio.wait_for(self.release.wait(), timeout=30)
        except asyncio.CancelledError:
            self.cancelled.append((namespace, name))
            raise
        if self.fail:
            raise RuntimeError("the API server went away")


@asynccontextmanager
async def serving(recorder: Recorder, namespaces: list[str], **options: Any) -> AsyncIterator[RecheckServer]:
    server = RecheckServer(namespaces, recorder, **options)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def client_of(server: RecheckServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        yield client


def settled(server: RecheckServer) -> Callable[[], bool]:
    return lambda: server.running == 0


async def test_a_watched_connector_is_rechecked_at_most_once_per_interval() -> None:
    recorder = Recorder()
    async with serving(recorder, ["team-a"], interval=2) as server, client_of(server) as client:
        first = await client.post("/v1/recheck/team-a/demo")
        assert (first.status_code, first.json()) == (202, {"recheck": "scheduled"})
        await eventually(lambda: recorder.calls == [("team-a", "demo")], within=10)
        await eventually(settled(server), within=10)
        again = await client.post("/v1/recheck/team-a/demo")
        assert (again.status_code, again.json()) == (202, {"recheck": "coalesced"})
        other = await client.post("/v1/recheck/team-a/other.name-2")  # each Connector has its own limit
        assert other.json() == {"recheck": "scheduled"}
        await eventually(settled(server), within=10)
        assert recorder.calls == [("team-a", "demo"), ("team-a", "other.name-2")]

        async def scheduled_again() -> bool:  # once the interval has passed
            return (await client.post("/v1/recheck/team-a/demo")).json() == {"recheck": "scheduled"}

        await eventually(scheduled_again, within=10)
        await eventually(lambda: recorder.calls.count(("team-a", "demo")) == 2, within=10)


async def test_one_recheck_of_a_connector_at_a_time_and_a_bounded_number_in_all() -> None:
    recorder = Recorder(hold=True)
    async with serving(recorder, ["ns"], interval=0, max_running=2) as server, client_of(server) as client:
        assert (await client.post("/v1/recheck/ns/one")).json() == {"recheck": "scheduled"}
        await eventually(lambda: len(recorder.calls) == 1, within=10)
        assert (await client.post("/v1/recheck/ns/one")).json() == {"recheck": "coalesced"}  # still running
        assert (await client.post("/v1/recheck/ns/two")).json() == {"recheck": "scheduled"}
        assert (await client.post("/v1/recheck/ns/three")).json() == {"recheck": "coalesced"}  # two are running
        assert server.running == 2
        recorder.release.set()
        await eventually(settled(server), within=10)
        assert (await client.post("/v1/recheck/ns/three")).json() == {"recheck": "scheduled"}
        await eventually(settled(server), within=10)
    assert recorder.calls == [("ns", "one"), ("ns", "two"), ("ns", "three")]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/recheck/ns",
        "/v1/recheck/ns/",
        "/v1/recheck//demo",
        "/v1/recheck/NS/demo",
        "/v1/recheck/ns/Demo",
        "/v1/recheck/ns/a/b",
        "/v1/recheck/ns/-demo",
        "/v1/recheck/ns/demo_1",
        "/v1/recheck/ns/" + "a" * 254,
        "/v1/recheck/" + "n" * 64 + "/demo",
    ],
)
async def test_malformed_names_are_404_with_a_json_error(path: str) -> None:
    recorder = Recorder()
    async with serving(recorder, ["ns"]) as server, client_of(server) as client:
        answer = await client.post(path)
    assert answer.status_code == 404
    assert "namespace and a Connector name" in answer.json()["error"]
    assert recorder.calls == []


async def test_only_watched_namespaces_are_rechecked() -> None:
    recorder = Recorder()
    async with serving(recorder, ["team-a", "team-b"]) as server, client_of(server) as client:
        answer = await client.post("/v1/recheck/team-c/demo")
        assert answer.status_code == 404
        assert answer.json() == {"error": "Namespace team-c is not watched by this operator."}
        assert (await client.post("/v1/recheck/team-b/demo")).status_code == 202
        await eventually(settled(server), within=10)
        assert (await client.get("/v1/recheck/team-b/demo")).status_code == 405  # POST only
    assert recorder.calls == [("team-b", "demo")]


async def test_watching_every_namespace_rechecks_in_any() -> None:
    recorder = Recorder()
    async with serving(recorder, []) as server, client_of(server) as client:
        assert (await client.post("/v1/recheck/anywhere/demo")).json() == {"recheck": "scheduled"}
        await eventually(settled(server), within=10)
    assert recorder.calls == [("anywhere", "demo")]


async def test_a_failing_recheck_is_logged_and_the_server_keeps_answering(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connector_operator.recheck")
    recorder = Recorder(fail=True)
    async with serving(recorder, ["ns"], interval=0) as server, client_of(server) as client:
        assert (await client.post("/v1/recheck/ns/demo")).status_code == 202
        await eventually(lambda: len(recorder.calls) == 1 and server.running == 0, within=10)
        failed = [r for r in caplog.records if r.getMessage() == "recheck failed"]
        assert [(r.levelname, getattr(r, "connector", None), getattr(r, "error", None)) for r in failed] == [
            ("WARNING", "ns/demo", "RuntimeError")
        ]
        assert "went away" not in captured_log_text(caplog)  # the exception's type, not its text
        assert (await client.post("/v1/recheck/ns/demo")).json() == {"recheck": "scheduled"}
        await eventually(lambda: len(recorder.calls) == 2 and server.running == 0, within=10)


async def test_stop_closes_the_port_and_cancels_rechecks_in_progress() -> None:
    recorder = Recorder(hold=True)
    server = RecheckServer(["ns"], recorder)
    await server.start("127.0.0.1", 0)
    port = server.port
    async with client_of(server) as client:
        assert (await client.post("/v1/recheck/ns/demo")).status_code == 202
        await eventually(lambda: recorder.calls == [("ns", "demo")], within=10)
    await server.stop()
    assert recorder.cancelled == [("ns", "demo")] and server.running == 0
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{port}/v1/recheck/ns/demo")


async def test_a_port_in_use_is_an_error_at_start() -> None:
    recorder = Recorder()
    async with serving(recorder, ["ns"]) as first:
        second = RecheckServer(["ns"], recorder)
        with pytest.raises(OSError):
            await second.start("127.0.0.1", first.port)
