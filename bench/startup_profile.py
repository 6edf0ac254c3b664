"""Where an embedded proxy's start-up goes: its phases, and its imports by package.

A fresh ``python -X importtime`` does what a ``serve`` worker does before it answers (import the server
and the app, build the app with the bundled connectors, run the app's start-up) and times each phase;
Python's own import timer gives each module's self time, summed here by top-level package. The
supervisor's fork, the worker's boot and the first request are the rest of the measured start-up.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

PHASES = """
import time
began = time.perf_counter()
import asyncio
import connector_proxy.serving.supervisor
from connector_proxy.app import create_app
from connector_proxy.settings import Settings
imported = time.perf_counter()
app = create_app(Settings())
built = time.perf_counter()

async def start() -> float:
    async with app.router.lifespan_context(app):
        return time.perf_counter()

started = asyncio.run(start())
import json
print(json.dumps({"import_s": imported - began, "create_app_s": built - imported, "lifespan_s": started - built}))
"""


def by_package(importtime: str) -> tuple[int, list[tuple[str, int]]]:
    """Modules imported, and each top-level package's summed self time in µs, largest first."""
    totals: collections.Counter[str] = collections.Counter()
    modules = 0
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        totals[name.strip().split(".")[0]] += int(self_us)
        modules += 1
    return modules, totals.most_common()


def measure(env: Mapping[str, str], repeat: int = 3) -> dict[str, Any]:
    """The median run of ``repeat`` (by total time): its phases and its imports by package."""
    runs = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", PHASES],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            return {"error": done.stderr.strip()[-2000:]}
        phases = json.loads(done.stdout.strip().splitlines()[-1])
        modules, packages = by_package(done.stderr)
        runs.append({**phases, "modules": modules, "packages_us": packages})
    runs.sort(key=lambda run: run["import_s"] + run["create_app_s"] + run["lifespan_s"])
    return {"repeat": repeat, **runs[len(runs) // 2]}
