"""Blocking community commands run in worker processes (or the thread pool): while many of them
are provably still running, the event loop keeps answering (the catalog), and they all complete
once released."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from proxytest.protocol import validate, validate_do_response

ProxyFactory = Callable[..., str]

PARALLEL = 16
START_DEADLINE_S = 10.0
POLL_S = 0.02


def _marked(directory: Path, prefix: str) -> set[str]:
    return {p.name.removeprefix(prefix) for p in directory.glob(f"{prefix}*")}


@pytest.mark.parametrize(
    "room",
    [{"isolation": "process", "isolated_workers": PARALLEL}, {"isolation": "thread", "thread_pool_size": PARALLEL + 4}],
    ids=["process", "thread"],
)
async def test_catalog_answers_while_blocking_commands_run(
    start_proxy: ProxyFactory, tmp_path: Path, room: dict[str, object]
) -> None:
    url = start_proxy(**room)
    names = [f"call{i:02d}" for i in range(PARALLEL)]
    release = tmp_path / "release"
    limits = httpx.Limits(max_connections=PARALLEL + 4)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        calls = [
            asyncio.create_task(
                http.post("/v1/do/failing/WaitForFile", json={"directory": str(tmp_path), "name": n, "max_wait": 20})
            )
            for n in names
        ]
        try:
            # Every command has started and is blocked (none can finish before the release file exists).
            for _ in range(int(START_DEADLINE_S / POLL_S)):
                if _marked(tmp_path, "started-") == set(names):
                    break
                await asyncio.sleep(POLL_S)
            assert _marked(tmp_path, "started-") == set(names), "not all commands started in parallel"

            catalog = await http.get("/v1/commands", timeout=10)
            status = await http.get("/v1/status", timeout=10)

            # Still blocked when those answers came back: nothing finished, no call was answered.
            assert not release.exists()
            assert _marked(tmp_path, "finished-") == set()
            assert not any(call.done() for call in calls)
        finally:
            release.touch()
            responses = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=30)

    assert catalog.status_code == 200
    validate("CommandCatalog", catalog.json())
    assert "failing/WaitForFile" in {entry["id"] for entry in catalog.json()}
    assert status.status_code == 200

    for name, response in zip(names, responses, strict=True):
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 200
        validate_do_response(response.status_code, response.json())
        assert response.json()["command_response"]["body"] == {"name": name, "released": True}
    assert _marked(tmp_path, "finished-") == set(names)
