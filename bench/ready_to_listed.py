"""Time from a Connector becoming Ready to a Kubernetes-mode proxy listing its command.

Starts the test suite's in-memory Kubernetes API emulator in this script's event loop, applies the
Connector CRD, creates namespace ``bench`` and starts ``connector-proxy serve`` in Kubernetes mode against
it (a subprocess, ``KUBECONFIG`` naming the emulator). Then, for each of ``--count`` Connectors, one after
another: create it (not Ready yet) and wait until the proxy has taken that in (its registry revision moves),
write its one-command catalog ConfigMap and patch its ``/status`` to Ready with an endpoint and that
catalog's hash, and poll the proxy's ``GET /v1/commands`` every millisecond (from just before the PATCH is
sent) until the command is listed (at most ``--timeout`` seconds). No operator runs: the ConfigMap and the
status patch are what the operator would write, in its order.

The clock starts when the emulator commits the Ready status (the instant it hands the watch event to its
watchers, stamped by an extra watcher queue registered in-process) and stops when a ``GET /v1/commands``
answer listing the command arrives, so a sample includes up to one polling interval plus one poll's round
trip. The PATCH's own round trip and the time from sending it are recorded too (``patch_ms``, ``from_send_ms``).
The emulator serves in this loop: while it handles a request nothing else here runs (neither the polls nor its
own watch stream to the proxy), so the rest of the PATCH's handling after the commit lands in every sample; it
is recorded as ``commit_to_answer_ms``. kmock's request log (scanned on every request) is emptied before each
Connector so that this cost stays flat instead of growing with the run.

    python bench/ready_to_listed.py [--count 30] [--out result.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import servers

from connector_proxy.catalog_map import CATALOG_KEY, CATALOG_LABEL, catalog_hash, encode_catalog
from connector_proxy.contract import CONNECTOR_ANNOTATION, GROUP, VERSION

REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "charts" / "connector-proxy" / "crds" / "connectors.spiffworkflow.org.yaml"
API_VERSION = f"{GROUP}/{VERSION}"
NAMESPACE = "bench"
POLL_INTERVAL_S = 0.001
UNUSED_ENDPOINT = "http://127.0.0.1:9"  # never called: no command is run


def kube_fixtures() -> ModuleType:
    """The test suite's emulator helpers (``tests/kube/fixtures.py``)."""
    sys.path.insert(0, str(REPO / "tests"))
    from kube import fixtures

    return fixtures


class CommitClock:
    """Duck-types the emulator's watcher queues: notes when each Connector's Ready status is committed."""

    def __init__(self) -> None:
        self.ready_at: dict[str, float] = {}

    def put_nowait(self, event: Any) -> None:
        now = time.perf_counter()
        if event is None or event.type != "MODIFIED" or event.object.get("kind") != "Connector":
            return
        conditions = (event.object.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            self.ready_at.setdefault(event.object["metadata"]["name"], now)


def connector(name: str) -> dict[str, Any]:
    spec = {"source": {"url": {"endpoint": UNUSED_ENDPOINT}}}
    metadata = {"name": name, "namespace": NAMESPACE}
    return {"apiVersion": API_VERSION, "kind": "Connector", "metadata": metadata, "spec": spec}


def catalog_config_map(name: str, command_id: str) -> tuple[dict[str, Any], str]:
    """The catalog ConfigMap the operator writes before the status, and the catalog's hash."""
    commands: list[dict[str, Any]] = [{"id": command_id, "parameters": []}]
    metadata = {
        "name": f"connector-{name}-catalog",
        "namespace": NAMESPACE,
        "labels": {CATALOG_LABEL: "true"},
        "annotations": {CONNECTOR_ANNOTATION: name},
    }
    binary = {CATALOG_KEY: base64.b64encode(encode_catalog(commands, [])).decode()}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "binaryData": binary}, catalog_hash(
        commands, []
    )


def ready_status(config_map: str, digest: str) -> dict[str, Any]:
    """What the operator writes once a url-sourced Connector's workload answers."""
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "Serving",
        "message": "bench",
        "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return {
        "endpoint": UNUSED_ENDPOINT,
        "sourceKind": "url",
        "catalogConfigMap": config_map,
        "catalogHash": digest,
        "commandCount": 1,
        "authCount": 0,
        "conditions": [condition],
    }


async def readiness(client: httpx.AsyncClient) -> dict[str, Any] | None:
    try:
        response = await client.get("/v1/readiness")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


async def wait_synced(client: httpx.AsyncClient, proxy: servers.Server, within: float) -> int:
    """Wait (without blocking the emulator's loop) until the proxy's first list succeeded; its revision."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise servers.ServerError(f"the proxy exited with {proxy.process.returncode}:\n{proxy.log_tail()}")
        ready = await readiness(client)
        if ready is not None:
            return int(ready["revision"])
        await asyncio.sleep(0.05)
    raise servers.ServerError(f"the proxy was not ready within {within:g} s:\n{proxy.log_tail()}")


async def wait_revision_above(client: httpx.AsyncClient, revision: int, within: float) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready = await readiness(client)
        if ready is not None and int(ready["revision"]) > revision:
            return int(ready["revision"])
        await asyncio.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"the proxy's revision stayed at {revision} for {within:g} s")


async def poll_until_listed(client: httpx.AsyncClient, command_id: str, within: float) -> tuple[float | None, int]:
    """(perf_counter when an answer listing ``command_id`` arrived, or None after ``within`` s; polls made)."""
    deadline = time.perf_counter() + within
    polls = 0
    while time.perf_counter() < deadline:
        polls += 1
        response = await client.get("/v1/commands")
        if response.status_code == 200 and any(entry["id"] == command_id for entry in response.json()):
            return time.perf_counter(), polls
        await asyncio.sleep(POLL_INTERVAL_S)
    return None, polls


async def one_connector(
    kube: Any, clock: CommitClock, client: httpx.AsyncClient, index: int, revision: int, within: float
) -> dict[str, Any]:
    name = f"ready{index:02d}"
    command_id = f"{name}/Ping"
    # kmock logs every request and scans that log on each new one (so its cost grows with the run); we never
    # read the log, so empty it: the emulator's own time stays flat, as a real API server's would.
    kube.emulator._requests.clear()
    await kube.create(connector(name))
    await wait_revision_above(client, revision, within)  # the proxy has taken in the not-yet-Ready Connector
    config_map, digest = catalog_config_map(name, command_id)
    await kube.create(config_map)
    poller = asyncio.create_task(poll_until_listed(client, command_id, within))
    sent = time.perf_counter()
    status = ready_status(config_map["metadata"]["name"], digest)
    await kube.patch_status(API_VERSION, "Connector", NAMESPACE, name, status)
    answered = time.perf_counter()
    listed_at, polls = await poller
    committed = clock.ready_at.get(name)
    if committed is None:
        raise RuntimeError(f"the emulator never committed a Ready status for {name}")
    sample: dict[str, Any] = {
        "connector": name,
        "polls": polls,
        "patch_ms": (answered - sent) * 1000,
        "commit_to_answer_ms": (answered - committed) * 1000,
    }
    if listed_at is None:
        return {**sample, "ms": None, "from_send_ms": None}
    return {**sample, "ms": (listed_at - committed) * 1000, "from_send_ms": (listed_at - sent) * 1000}


def nearest_rank(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    times = [s["ms"] for s in samples if s["ms"] is not None]
    patches = [s["patch_ms"] for s in samples]
    from_send = [s["from_send_ms"] for s in samples if s["from_send_ms"] is not None]
    after_commit = [s["commit_to_answer_ms"] for s in samples]
    summary = (
        {"median": statistics.median(times), "p90": nearest_rank(times, 90), "max": max(times), "min": min(times)}
        if times
        else {"median": None, "p90": None, "max": None, "min": None}
    )
    return {
        "summary_ms": summary,
        "patch_ms_median": statistics.median(patches) if patches else None,
        "from_send_ms_median": statistics.median(from_send) if from_send else None,
        "commit_to_answer_ms_median": statistics.median(after_commit) if after_commit else None,
        "timeouts": len(samples) - len(times),
        "samples": samples,
    }


async def measure(count: int, within: float, startup_timeout: float, work_dir: Path) -> dict[str, Any]:
    fixtures = kube_fixtures()
    proxy_bin = str(Path(sys.executable).with_name("connector-proxy"))
    clock = CommitClock()
    async with fixtures.start_kube_emulator(work_dir / "kubeconfig") as kube:
        kube.emulator._watchers.add(clock)  # a private hook of the test emulator: see CommitClock
        await kube.apply_crd(CRD)
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        port = servers.free_port()
        env = {
            "KUBECONFIG": str(kube.kubeconfig_path),
            "CONNECTOR_PROXY_KUBERNETES": "true",
            "CONNECTOR_PROXY_NAMESPACES": NAMESPACE,
            "CONNECTOR_PROXY_HOST": servers.HOST,
            "CONNECTOR_PROXY_PORT": str(port),
        }
        proxy = servers.start(
            "kube-proxy", [proxy_bin, "serve"], port=port, env=servers.clean_environment(env), log_dir=work_dir
        )
        try:
            async with httpx.AsyncClient(base_url=proxy.base_url, timeout=5.0, trust_env=False) as client:
                revision = await wait_synced(client, proxy, startup_timeout)
                samples = []
                for index in range(count):
                    sample = await one_connector(kube, clock, client, index, revision, within)
                    samples.append(sample)
                    revision = int((await readiness(client) or {"revision": revision})["revision"])
                final = await client.get("/v1/commands")
                catalog_bytes = len(final.content)
        finally:
            await asyncio.to_thread(servers.stop, proxy)  # the emulator keeps serving while the proxy stops
            kube.emulator._watchers.discard(clock)
    return {
        "count": count,
        "timeout_s": within,
        "poll_interval_ms": POLL_INTERVAL_S * 1000,
        "catalog_bytes_at_end": catalog_bytes,
        **summarize(samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=30, help="Connectors to create, one after another.")
    parser.add_argument("--timeout", type=float, default=10.0, help="Seconds to wait for each to be listed.")
    parser.add_argument("--startup-timeout", type=float, default=60.0, help="Seconds the proxy may take to start.")
    parser.add_argument("--out", type=Path, help="Write the result as JSON here (default: stdout).")
    parser.add_argument("--log-dir", type=Path, help="Where the proxy's log goes (default: a temporary directory).")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be >= 1")
    with tempfile.TemporaryDirectory(prefix="ready-to-listed-") as scratch:
        log_dir = args.log_dir or Path(scratch)
        result = asyncio.run(measure(args.count, args.timeout, args.startup_timeout, log_dir))
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    summary = result["summary_ms"]
    if summary["median"] is not None:
        print(
            f"Ready -> listed over {args.count}: median {summary['median']:.1f} ms, p90 {summary['p90']:.1f} ms, "
            f"max {summary['max']:.1f} ms, {result['timeouts']} timeouts",
            file=sys.stderr,
        )
    return 1 if result["timeouts"] == args.count else 0


if __name__ == "__main__":
    raise SystemExit(main())
