"""``make bench``: start the proxy (embedded, 1,000-command synthetic, and a front proxy forwarding to the
embedded one as Kubernetes mode does), a fast local upstream and a PostgreSQL server (bench/postgres.py), and
measure them with wrk in one run (the PostgreSQL floor, psycopg directly, in this process); then time
Connector Ready -> listed against the Kubernetes API emulator (``bench/ready_to_listed.py``) and a worker's
memory under concurrent large request bodies (``bench/large_bodies.py``); write ``bench/results.md`` and
``bench/results/<timestamp>.raw.json``.

    .venv/bin/python bench/run.py [--duration 10] [--warmup 2] [--connections 4] [--latency-connections 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import machine
import observability
import postgres
import process_costs
import profile_do
import report
import scale
import servers
import startup_profile
from servers import Server
from wrkrun import Measurement, Request, WrkError, run_wrk

BENCH_DIR = Path(__file__).resolve().parent
UPSTREAM_PATH = "/json"
GET_COMMAND = "http/GetRequestV2"
COMMUNITY_COMMAND = "bench/Echo"  # bench/community: a synchronous community command doing no I/O
COMMUNITY_BODY = json.dumps({"message": "hello"})
# What python-requests (spiff-arena's backend HTTP client) sends by default.
GZIP_HEADERS = (("Accept-Encoding", "gzip, deflate"),)
READY_TIMEOUT_S = 180.0
SLOW_UPSTREAM_S = 0.5  # the concurrency scenario's upstream answers each request this late
SLOW_CONNECTIONS = 200
SETTLE_S = 2.0  # the slow-call runs' lag is also read from this second on: the 200 connections are open
STARTUP_REPEAT = 5
SLOW_LABEL = f"{SLOW_CONNECTIONS} concurrent calls to an upstream answering in {SLOW_UPSTREAM_S * 1000:g} ms"
PROFILE_LABEL = "where the embedded worker's time goes during /v1/do at 4 connections (py-spy)"
HOP_PROFILE_LABEL = "where the front proxy's time goes during the Kubernetes-mode hop at 4 connections (py-spy)"
SLOW_PROFILE_LABEL = (
    f"where the embedded worker's time goes during {SLOW_CONNECTIONS} slow calls and the catalog requests (py-spy)"
)
CATALOG_PROFILE_LABEL = (
    "where a Kubernetes-mode proxy's time goes serving 10,000 commands, gzip, at 4 connections (py-spy)"
)
STARTUP_PROFILE_LABEL = "where an embedded proxy's start-up goes: phases and imports by package"
GC_LABEL = "a full garbage collection with the 1,000-command proxy loaded (gc.collect(), median of 5)"
STARTUP_LABEL = "connector-proxy serve start-up (embedded, bundled connectors) and idle memory"
READY_LABEL = "Connector Ready -> listed by a Kubernetes-mode proxy (API emulator, polled every 1 ms)"
LARGE_LABEL = "worker memory under concurrent large POST /v1/do bodies"
LARGE_TIMEOUT_BASE_S = 120.0  # plus LARGE_TIMEOUT_PER_REPEAT_S per repeat (one repeat takes about 30 s)
LARGE_TIMEOUT_PER_REPEAT_S = 180.0
LARGE_STOP_GRACE_S = 150.0  # its requests' own deadline (120 s) plus stopping its servers


@dataclass(frozen=True)
class Target:
    """One thing wrk hammers; ``latency`` says whether it is also measured at the latency connection count,
    ``warmup`` whether it gets its own warm-up (not needed right after the same route on the same server)."""

    key: str
    label: str
    request: Request
    check: Callable[[], dict[str, Any]]
    latency: bool = True
    warmup: bool = True
    floor: Callable[[int, float, float], Measurement] | None = None  # measured in-process, not by wrk
    server: Server | None = None  # whose CPU per call and event loop lag are read around each run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds of each measured wrk run.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Seconds of warm-up per target (0: none).")
    parser.add_argument("--connections", type=int, default=4, help="Connections for throughput (the design's 4).")
    parser.add_argument("--latency-connections", type=int, default=1, help="Connections for the latency runs.")
    parser.add_argument("--startup-timeout", type=float, default=60.0, help="Seconds a server may take to start.")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR, help="Where results.md and results/ go.")
    parser.add_argument(
        "--ready-count", type=int, default=30, help="Connectors timed from Ready to listed (0: skip that scenario)."
    )
    parser.add_argument(
        "--large-body-mib",
        type=float,
        default=34.0,
        help="Body size of the large-bodies memory scenario, in MiB (0: skip that scenario).",
    )
    parser.add_argument(
        "--large-body-repeat", type=int, default=3, help="Runs of each large-bodies configuration (fresh proxies)."
    )
    parser.add_argument(
        "--proxy-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Extra environment for the embedded proxy (repeatable), e.g. CONNECTOR_PROXY_LOG_LEVEL=WARNING.",
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.latency_connections < 1:
        parser.error("durations must be >= 1 s (warm-up >= 0) and connection counts >= 1")
    if args.ready_count < 0:
        parser.error("--ready-count must be >= 0")
    if not 0 <= args.large_body_mib < 100 or args.large_body_repeat < 1:
        parser.error("--large-body-mib must be in [0, 100) and --large-body-repeat >= 1")
    return args


def env_pairs(pairs: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--proxy-env wants KEY=VALUE, got {pair!r}")
        parsed[key] = value
    return parsed


def start_servers(args: argparse.Namespace, log_dir: Path, started: list[Server], pg_dsn: str) -> dict[str, Server]:
    """Start upstream, embedded proxy, synthetic proxy and the front proxy together, then wait for each (the
    front proxy waits itself for its runtime, the embedded proxy, whose catalog it reads when it starts)."""
    python = sys.executable
    proxy_bin = str(Path(python).with_name("connector-proxy"))
    names = ("upstream", "upstream_slow", "embedded", "synthetic", "synthetic_unfrozen", "federated", "scale")
    names += ("community", "community_thread", "lag_probe")
    ports = {name: servers.free_port() for name in names}
    proxy_env = {
        "CONNECTOR_PROXY_HOST": servers.HOST,
        "CONNECTOR_PROXY_PORT": str(ports["embedded"]),
        "CONNECTOR_PROXY_CONFIG__POSTGRES_DEFAULT_DSN": pg_dsn,
    }
    proxy_env.update(env_pairs(args.proxy_env))
    runtime = f"http://{servers.HOST}:{ports['embedded']}"
    plan = {
        "upstream": [python, str(BENCH_DIR / "upstream.py"), "--port", str(ports["upstream"])],
        "upstream_slow": [
            *(python, str(BENCH_DIR / "upstream.py"), "--port", str(ports["upstream_slow"])),
            *("--delay", str(SLOW_UPSTREAM_S)),
        ],
        "embedded": [proxy_bin, "serve"],
        "lag_probe": [python, str(BENCH_DIR / "lag_probe.py"), "--port", str(ports["lag_probe"])],
        "synthetic": [python, str(BENCH_DIR / "synthetic_proxy.py"), "--port", str(ports["synthetic"])],
        "scale": [python, str(BENCH_DIR / "scale.py"), "--port", str(ports["scale"])],
        "synthetic_unfrozen": [
            *(python, str(BENCH_DIR / "synthetic_proxy.py"), "--port", str(ports["synthetic_unfrozen"])),
            "--no-gc-freeze",
        ],
        "federated": [
            *(python, str(BENCH_DIR / "federated_proxy.py"), "--port", str(ports["federated"])),
            *("--runtime", runtime, "--runtime-timeout", str(args.startup_timeout)),
        ],
    }
    extra_env = {"embedded": proxy_env}
    for name, isolation in (("community", "process"), ("community_thread", "thread")):
        plan[name] = [proxy_bin, "serve"]
        extra_env[name] = {
            **proxy_env,
            "CONNECTOR_PROXY_PORT": str(ports[name]),
            "CONNECTOR_PROXY_CONNECTOR_PATHS": json.dumps([str(BENCH_DIR / "community")]),
            "CONNECTOR_PROXY_ISOLATION": isolation,
        }
    for name, command in plan.items():
        env = servers.clean_environment(extra_env.get(name, {}))
        started.append(servers.start(name, command, port=ports[name], env=env, log_dir=log_dir))
    by_name = {server.name: server for server in started}
    ready_paths = {"upstream": UPSTREAM_PATH, "embedded": "/v1/liveness", "synthetic": "/v1/liveness"}
    ready_paths.update(federated="/v1/liveness", community="/v1/liveness", community_thread="/v1/liveness")
    ready_paths.update(synthetic_unfrozen="/v1/liveness", upstream_slow=UPSTREAM_PATH, scale="/v1/liveness")
    ready_paths.update(lag_probe="/metrics")
    for name, path in ready_paths.items():
        servers.wait_ready(by_name[name], path, args.startup_timeout)
    return by_name


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"sanity check failed: {message}")


def check_get(url: str, expected: bytes | None = None) -> dict[str, Any]:
    status, body = servers.get(url)
    expect(status == 200, f"GET {url} answered {status}")
    expect(expected is None or body == expected, f"GET {url} answered an unexpected body")
    return {"status": status, "bytes": len(body)}


def check_catalog(url: str, expected_count: int | None, must_have: str | None) -> dict[str, Any]:
    status, body = servers.get(url, timeout=10.0)
    expect(status == 200, f"GET {url} answered {status}")
    ids = [entry["id"] for entry in json.loads(body)]
    expect(expected_count is None or len(ids) == expected_count, f"{url} lists {len(ids)} commands")
    expect(must_have is None or must_have in ids, f"{url} does not list {must_have}")
    return {"status": status, "bytes": len(body), "commands": len(ids)}


def check_catalog_gzip(url: str, expected_count: int | None, must_have: str | None) -> dict[str, Any]:
    """The gzip answer: encoded as announced, and the same catalog as the identity answer once decoded."""
    status, headers, body = servers.fetch(url, dict(GZIP_HEADERS), timeout=10.0)
    expect(status == 200, f"GET {url} (gzip) answered {status}")
    encoding = headers.get("content-encoding")
    expect(encoding == "gzip", f"GET {url} (gzip): Content-Encoding {encoding}")
    expect(headers.get("content-length") == str(len(body)), f"GET {url} (gzip): Content-Length is not the body's")
    decoded = gzip.decompress(body)
    expect(decoded == servers.get(url, timeout=10.0)[1], f"GET {url}: the gzip body is not the identity body")
    ids = [entry["id"] for entry in json.loads(decoded)]
    expect(expected_count is None or len(ids) == expected_count, f"{url} lists {len(ids)} commands")
    expect(must_have is None or must_have in ids, f"{url} does not list {must_have}")
    return {"status": status, "bytes": len(body), "decoded_bytes": len(decoded), "commands": len(ids)}


def check_do(url: str, body: str, upstream_body: bytes) -> dict[str, Any]:
    status, answer = servers.post_json(url, body.encode())
    expect(status == 200, f"POST {url} answered {status}: {answer[:300]!r}")
    envelope = json.loads(answer)
    response = envelope.get("command_response", {})
    expect(envelope.get("error") is None, f"POST {url} reported an error: {envelope.get('error')}")
    expect(response.get("http_status") == 200, f"POST {url}: upstream status {response.get('http_status')}")
    expect(response.get("body") == json.loads(upstream_body), f"POST {url}: body is not the upstream's document")
    return {"status": status, "bytes": len(answer)}


def check_community(url: str) -> dict[str, Any]:
    status, answer = servers.post_json(url, COMMUNITY_BODY.encode())
    expect(status == 200, f"POST {url} answered {status}: {answer[:300]!r}")
    envelope = json.loads(answer)
    expect(envelope.get("error") is None, f"POST {url} reported an error: {envelope.get('error')}")
    expect(envelope["command_response"]["body"] == json.loads(COMMUNITY_BODY), f"POST {url}: not the echo")
    return {"status": status, "bytes": len(answer)}


def check_pg(url: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    status, answer = servers.post_json(url, json.dumps(postgres.proxy_body()).encode())
    expect(status == 200, f"POST {url} answered {status}: {answer[:300]!r}")
    envelope = json.loads(answer)
    expect(envelope.get("error") is None, f"POST {url} reported an error: {envelope.get('error')}")
    expect(envelope["command_response"]["body"]["rows"] == rows, f"POST {url}: not the expected row")
    return {"status": status, "bytes": len(answer)}


def postgres_targets(by_name: dict[str, Server], dsn: str) -> list[Target]:
    """The same one-row query: psycopg directly (the floor), then pg/Query through the proxy."""
    url = f"{by_name['embedded'].base_url}/v1/do/{postgres.COMMAND}"
    rows = postgres.expected_rows(dsn)
    body = json.dumps(postgres.proxy_body())
    return [
        Target(
            "pg_direct",
            "psycopg directly: the same one-row query, a connection per caller (floor of pg/Query)",
            Request("postgresql://127.0.0.1/bench", "SQL"),
            lambda: {"status": 0, "bytes": len(json.dumps(rows))},
            floor=lambda c, s, w: postgres.measure_direct(dsn, connections=c, seconds=s, warmup=w),
        ),
        Target(
            "do_pg",
            f"proxy POST /v1/do/{postgres.COMMAND}: one row by primary key (embedded, pooled connections)",
            Request(url, "POST", body),
            lambda: check_pg(url, rows),
            server=by_name["embedded"],
        ),
    ]


def community_targets(by_name: dict[str, Server]) -> list[Target]:
    """The same synchronous community command, in a worker process (the default) and in a thread."""
    urls = {name: f"{by_name[name].base_url}/v1/do/{COMMUNITY_COMMAND}" for name in ("community", "community_thread")}
    return [
        Target(
            "do_community",
            f"proxy POST /v1/do/{COMMUNITY_COMMAND} (sync community command, worker process: the default)",
            Request(urls["community"], "POST", COMMUNITY_BODY),
            lambda: check_community(urls["community"]),
            server=by_name["community"],
        ),
        Target(
            "do_community_thread",
            f"proxy POST /v1/do/{COMMUNITY_COMMAND} (sync community command, CONNECTOR_PROXY_ISOLATION=thread)",
            Request(urls["community_thread"], "POST", COMMUNITY_BODY),
            lambda: check_community(urls["community_thread"]),
            server=by_name["community_thread"],
        ),
    ]


def build_targets(by_name: dict[str, Server], pg_dsn: str) -> list[Target]:
    upstream_url = by_name["upstream"].base_url + UPSTREAM_PATH
    upstream_body = servers.get(upstream_url)[1]
    embedded, synthetic = by_name["embedded"].base_url, by_name["synthetic"].base_url
    unfrozen, cluster = by_name["synthetic_unfrozen"].base_url, by_name["scale"].base_url
    do_url = f"{embedded}/v1/do/{GET_COMMAND}"
    front_url = f"{by_name['federated'].base_url}/v1/do/{GET_COMMAND}"
    do_body = json.dumps({"url": upstream_url})
    return [
        Target(
            "direct",
            "direct GET to the upstream (floor)",
            Request(upstream_url),
            lambda: check_get(upstream_url, upstream_body),
            server=by_name["upstream"],
        ),
        Target(
            "liveness",
            "proxy GET /v1/liveness (framework overhead)",
            Request(f"{embedded}/v1/liveness"),
            lambda: check_get(f"{embedded}/v1/liveness"),
            latency=False,
            server=by_name["embedded"],
        ),
        Target(
            "commands",
            "proxy GET /v1/commands (embedded, bundled connectors)",
            Request(f"{embedded}/v1/commands"),
            lambda: check_catalog(f"{embedded}/v1/commands", None, GET_COMMAND),
            server=by_name["embedded"],
        ),
        Target(
            "commands_gzip",
            "proxy GET /v1/commands (embedded, bundled), Accept-Encoding: gzip",
            Request(f"{embedded}/v1/commands", headers=GZIP_HEADERS),
            lambda: check_catalog_gzip(f"{embedded}/v1/commands", None, GET_COMMAND),
            warmup=False,
            server=by_name["embedded"],
        ),
        Target(
            "commands_1000",
            "proxy GET /v1/commands (1,000 synthetic commands)",
            Request(f"{synthetic}/v1/commands"),
            lambda: check_catalog(f"{synthetic}/v1/commands", 1000, None),
            server=by_name["synthetic"],
        ),
        Target(
            "commands_1000_unfrozen",
            "proxy GET /v1/commands (1,000 synthetic commands), CONNECTOR_PROXY_GC_FREEZE=false",
            Request(f"{unfrozen}/v1/commands"),
            lambda: check_catalog(f"{unfrozen}/v1/commands", 1000, None),
            server=by_name["synthetic_unfrozen"],
        ),
        Target(
            "commands_1000_gzip",
            "proxy GET /v1/commands (1,000 synthetic), Accept-Encoding: gzip",
            Request(f"{synthetic}/v1/commands", headers=GZIP_HEADERS),
            lambda: check_catalog_gzip(f"{synthetic}/v1/commands", 1000, None),
            warmup=False,
            server=by_name["synthetic"],
        ),
        Target(
            "commands_10000",
            "proxy GET /v1/commands (Kubernetes mode, 500 Connectors, 10,000 commands)",
            Request(f"{cluster}/v1/commands"),
            lambda: check_catalog(f"{cluster}/v1/commands", 10000, None),
            latency=False,
            server=by_name["scale"],
        ),
        Target(
            "commands_10000_gzip",
            "proxy GET /v1/commands (500 Connectors, 10,000 commands), Accept-Encoding: gzip",
            Request(f"{cluster}/v1/commands", headers=GZIP_HEADERS),
            lambda: check_catalog_gzip(f"{cluster}/v1/commands", 10000, None),
            server=by_name["scale"],
        ),
        Target(
            "do",
            f"proxy POST /v1/do/{GET_COMMAND} to the upstream (embedded; the runtime, called directly)",
            Request(do_url, "POST", do_body),
            lambda: check_do(do_url, do_body, upstream_body),
            server=by_name["embedded"],
        ),
        Target(
            "do_remote",
            f"front proxy -> runtime POST /v1/do/{GET_COMMAND} (Kubernetes-mode remote hop)",
            Request(front_url, "POST", do_body),
            lambda: check_do(front_url, do_body, upstream_body),
            server=by_name["federated"],
        ),
        *community_targets(by_name),
        *postgres_targets(by_name, pg_dsn),
    ]


LATE_S = 0.01  # the loop-lag target: a sample later than this is a pause over it


class Window:
    """What ``server`` (its process tree) and the idle ``probe`` loop did between opening the window and
    :meth:`close`: CPU per call, time spent waiting for a CPU, and for each loop-lag histogram the
    largest lag and the share of samples over 10 ms, for each of them that is given; and the time the
    hypervisor took from the machine meanwhile."""

    LAGS = ((process_costs.LAG, "loop_lag"), (process_costs.OWN_LAG, "own_loop_lag"))

    def __init__(self, server: Server | None, probe: Server | None) -> None:
        self.server, self.probe = server, probe
        self.lag = process_costs.lag_histograms(server.base_url) if server is not None else {}
        self.idle = process_costs.lag_histograms(probe.base_url) if probe is not None else {}
        self.cpu = process_costs.cpu_seconds(server.process.pid) if server is not None else None
        self.wait = process_costs.runqueue_wait_seconds(server.process.pid) if server is not None else None
        self.steal = process_costs.steal_seconds()

    @classmethod
    def lags(
        cls, before: dict[str, dict[float, float]], after: dict[str, dict[float, float]], prefix: str
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for metric, name in cls.LAGS:
            bound = process_costs.largest_lag_bound(before.get(metric), after.get(metric))
            found[f"{prefix}{name}_max_bound_s"] = "inf" if bound == float("inf") else bound
            found[f"{prefix}{name}_share_late"] = process_costs.share_late(
                before.get(metric), after.get(metric), LATE_S
            )
        return found

    def close(self, requests: int, seconds: float) -> dict[str, Any]:
        found: dict[str, Any] = {}
        steal = process_costs.steal_seconds()
        if steal is not None and self.steal is not None:
            found["steal_ms"] = (steal - self.steal) * 1000
        if self.server is not None and self.cpu is not None and requests > 0:
            found["cpu_ms_per_call"] = (process_costs.cpu_seconds(self.server.process.pid) - self.cpu) * 1000 / requests
            wait = process_costs.runqueue_wait_seconds(self.server.process.pid)
            if self.wait is not None and wait is not None:
                found["cpu_wait_ms_per_s"] = (wait - self.wait) * 1000 / seconds
            found.update(self.lags(self.lag, process_costs.lag_histograms(self.server.base_url), ""))
        if self.probe is not None:
            found.update(self.lags(self.idle, process_costs.lag_histograms(self.probe.base_url), "idle_"))
        return found


def measure_target(
    target: Target, args: argparse.Namespace, script_dir: Path, probe: Server | None = None
) -> dict[str, Any]:
    """Sanity-check, warm up, then measure at the latency and throughput connection counts; ``probe``:
    the idle loop (bench/lag_probe.py) whose lag over each run is the machine's share."""
    check = target.check()
    counts = sorted({args.latency_connections, args.connections} if target.latency else {args.connections})
    if args.warmup > 0 and target.warmup and target.floor is None:
        run_wrk(target.request, connections=args.connections, seconds=args.warmup, script_dir=script_dir)
    runs: dict[str, Any] = {}
    for connections in counts:
        window = Window(target.server, probe)
        if target.floor is not None:
            result = target.floor(connections, args.duration, args.warmup if target.warmup else 0)
        else:
            result = run_wrk(target.request, connections=connections, seconds=args.duration, script_dir=script_dir)
        run = {**result.as_dict(), **window.close(result.requests, args.duration)}
        print(f"  {target.key:14} c={connections}: {summary(result)}", flush=True)
        runs[str(connections)] = run
    return {
        "label": target.label,
        "method": target.request.method,
        "url": target.request.url,
        "check": check,
        "runs": runs,
        "warmed_up": args.warmup > 0 and target.warmup,
    }


def observed_slow_run(
    request: Request, server: Server, probe: Server, seconds: float, script_dir: Path
) -> tuple[Measurement, dict[str, Any], dict[str, Any]]:
    """wrk's 200 connections on ``request``; what ``server`` and ``probe`` did over the whole run and
    their lags and the steal time from ``SETTLE_S`` on, once the 200 connections and the upstream
    connections they need are open (wrk opens them all at once: a burst of its own)."""
    with ThreadPoolExecutor(1) as pool:
        whole = Window(server, probe)
        load = pool.submit(run_wrk, request, connections=SLOW_CONNECTIONS, seconds=seconds, script_dir=script_dir)
        time.sleep(SETTLE_S)
        settled = Window(server, probe)
        result = load.result()
    later = settled.close(result.requests, seconds - SETTLE_S)
    return (
        result,
        whole.close(result.requests, seconds),
        {k: v for k, v in later.items() if "lag" in k or k == "steal_ms"},
    )


def measure_slow_calls(
    by_name: dict[str, Server], args: argparse.Namespace, script_dir: Path, probe: Server
) -> dict[str, Any]:
    """200 concurrent connections to the slow upstream: directly; through ``POST /v1/do`` alone (the
    proxy's CPU per slow call); through it again with one connection on ``GET /v1/commands`` of the same
    proxy meanwhile (the catalog must stay fast), the proxy's and the idle loop's lag read over it."""
    slow_url = by_name["upstream_slow"].base_url + UPSTREAM_PATH
    embedded = by_name["embedded"]
    request = get_to_upstream(embedded, by_name["upstream_slow"])
    check_do(request.url, request.body or "", servers.get(slow_url)[1])
    seconds = max(args.duration, 10.0)
    direct = run_wrk(Request(slow_url), connections=SLOW_CONNECTIONS, seconds=seconds, script_dir=script_dir)
    print(f"  slow direct    c={SLOW_CONNECTIONS}: {summary(direct)}", flush=True)
    alone, alone_costs, alone_settled = observed_slow_run(request, embedded, probe, seconds, script_dir)
    print(f"  slow via /v1/do c={SLOW_CONNECTIONS}: {summary(alone)}", flush=True)
    with ThreadPoolExecutor(1) as pool:
        catalog = pool.submit(
            run_wrk,
            Request(f"{embedded.base_url}/v1/commands"),
            connections=1,
            seconds=seconds - 2,
            script_dir=script_dir,
        )
        proxied, costs, settled = observed_slow_run(request, embedded, probe, seconds, script_dir)
        during = catalog.result()
    print(f"  slow via /v1/do c={SLOW_CONNECTIONS}: {summary(proxied)}; /v1/commands meanwhile: {summary(during)}")
    return {
        "label": SLOW_LABEL,
        "direct": direct.as_dict(),
        "alone": {**alone.as_dict(), **alone_costs},
        "alone_settled": alone_settled,
        "proxied": {**proxied.as_dict(), **costs},
        "proxied_settled": settled,
        "settle_s": SETTLE_S,
        "catalog_during": during.as_dict(),
    }


def measure_slow_profile(by_name: dict[str, Server], args: argparse.Namespace, script_dir: Path) -> dict[str, Any]:
    """py-spy on the embedded worker during the slow-call scenario with the catalog requests meanwhile
    (its own run: the profiler's pauses would be in the measured lag)."""
    embedded = by_name["embedded"]
    workers = process_costs.worker_pids(embedded.process.pid)
    if not workers:
        return {"label": SLOW_PROFILE_LABEL, "error": "no worker process found"}
    loads = [
        (get_to_upstream(embedded, by_name["upstream_slow"]), SLOW_CONNECTIONS),
        (Request(f"{embedded.base_url}/v1/commands"), 1),
    ]
    return measure_profile(workers[0], loads, SLOW_PROFILE_LABEL, "slow-profile", args, script_dir)


def measure_profile(
    pid: int,
    loads: Sequence[tuple[Request, int]],
    label: str,
    name: str,
    args: argparse.Namespace,
    script_dir: Path,
) -> dict[str, Any]:
    """py-spy on process ``pid`` while wrk sends each of ``loads`` (a request, at that many connections)."""
    seconds = max(args.duration, 4.0)
    with ThreadPoolExecutor(len(loads)) as pool:
        running = [
            pool.submit(run_wrk, request, connections=connections, seconds=seconds + 2, script_dir=script_dir)
            for request, connections in loads
        ]
        time.sleep(1.0)
        found = profile_do.record(pid, seconds, script_dir / f"{name}.raw")
        for load in running:
            load.result()
    top = ", ".join(f"{package} {share:.0%}" for package, share in found.get("shares", [])[:6])
    print(f"  {name}: {found.get('samples', 0)} samples: {top or found.get('error')}", flush=True)
    return {"label": label, **found}


def get_to_upstream(proxy: Server, upstream: Server) -> Request:
    """``POST /v1/do/http/GetRequestV2`` of ``proxy`` to the bench upstream (the /v1/do rows' request)."""
    return Request(
        f"{proxy.base_url}/v1/do/{GET_COMMAND}", "POST", json.dumps({"url": upstream.base_url + UPSTREAM_PATH})
    )


def measure_do_profile(by_name: dict[str, Server], args: argparse.Namespace, script_dir: Path) -> dict[str, Any]:
    """The embedded worker during /v1/do."""
    embedded = by_name["embedded"]
    request = get_to_upstream(embedded, by_name["upstream"])
    workers = process_costs.worker_pids(embedded.process.pid)
    if not workers:
        return {"label": PROFILE_LABEL, "error": "no worker process found"}
    return measure_profile(workers[0], [(request, args.connections)], PROFILE_LABEL, "do-profile", args, script_dir)


def measure_hop_profile(by_name: dict[str, Server], args: argparse.Namespace, script_dir: Path) -> dict[str, Any]:
    """The front proxy (one process) during the Kubernetes-mode hop to the embedded proxy."""
    front = by_name["federated"]
    request = get_to_upstream(front, by_name["upstream"])
    loads = [(request, args.connections)]
    return measure_profile(front.process.pid, loads, HOP_PROFILE_LABEL, "hop-profile", args, script_dir)


def measure_catalog_profile(by_name: dict[str, Server], args: argparse.Namespace, script_dir: Path) -> dict[str, Any]:
    """The 500-Connector proxy (one process) serving its 10,000-command catalog gzip-encoded."""
    cluster = by_name["scale"]
    request = Request(f"{cluster.base_url}/v1/commands", headers=GZIP_HEADERS)
    loads = [(request, args.connections)]
    return measure_profile(cluster.process.pid, loads, CATALOG_PROFILE_LABEL, "catalog-profile", args, script_dir)


def measure_startup_profile(args: argparse.Namespace) -> dict[str, Any]:
    result = startup_profile.measure(servers.clean_environment(env_pairs(args.proxy_env)))
    if "error" not in result:
        top = ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in result["packages_us"][:5])
        print(f"  startup profile: imports {result['import_s']:.3f} s ({top}); app {result['create_app_s']:.3f} s")
    return {"label": STARTUP_PROFILE_LABEL, **result}


def worker_rss_after_load(server: Server) -> int | None:
    sizes = [process_costs.rss_bytes(pid) for pid in process_costs.worker_pids(server.process.pid)]
    return max((size for size in sizes if size is not None), default=None)


def measure_gc_pause() -> dict[str, Any]:
    """A full garbage collection's pause in a fresh process holding the 1,000-command proxy."""
    command = [sys.executable, str(BENCH_DIR / "synthetic_proxy.py"), "--measure-gc"]
    done = subprocess.run(command, env=servers.clean_environment({}), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return {"label": GC_LABEL, "error": done.stderr.strip()[-2000:]}
    result: dict[str, Any] = {"label": GC_LABEL, **json.loads(done.stdout)}
    print(
        f"  gc: a full collection takes {result['unfrozen_ms']:.1f} ms, {result['frozen_ms']:.1f} ms frozen", flush=True
    )
    return result


def measure_startup(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    proxy_bin = str(Path(sys.executable).with_name("connector-proxy"))
    env = servers.clean_environment(env_pairs(args.proxy_env))
    print(f"  startup: {STARTUP_REPEAT} starts of connector-proxy serve ...", flush=True)
    result = process_costs.measure_startup(proxy_bin, env, work_dir, STARTUP_REPEAT, args.startup_timeout)
    worker, supervisor = result["worker_rss_bytes_median"], result["supervisor_rss_bytes_median"]
    print(
        f"  startup: median {result['startup_s_median']:.3f} s; idle RSS worker {worker / 2**20:.0f} MiB, "
        f"supervisor {supervisor / 2**20:.0f} MiB",
        flush=True,
    )
    return {"label": STARTUP_LABEL, **result}


def summary(result: Measurement) -> str:
    text = f"{result.requests_per_s:,.0f} req/s, p50 {result.p50_ms:.3f} ms, p99 {result.p99_ms:.3f} ms"
    problems = result.errors + result.non_2xx
    return text + (f"  ({problems} errors/non-2xx)" if problems else "")


def write_results(run: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    raw_dir = out_dir / "results"
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw_path = raw_dir / f"{run['timestamp']}.raw.json"
    raw_path.write_text(json.dumps(run, indent=2) + "\n")
    md_path = out_dir / "results.md"
    md_path.write_text(report.render(run, raw_name=f"results/{raw_path.name}"))
    return md_path, raw_path


def measure_ready_to_listed(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """Run ``bench/ready_to_listed.py`` (its own emulator and Kubernetes-mode proxy) and read its JSON."""
    out = work_dir / "ready_to_listed.json"
    command = [sys.executable, str(BENCH_DIR / "ready_to_listed.py"), "--count", str(args.ready_count)]
    command += ["--out", str(out), "--log-dir", str(work_dir), "--startup-timeout", str(args.startup_timeout)]
    env = servers.clean_environment({})
    print(f"  ready_to_listed: {args.ready_count} Connectors ...", flush=True)
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=READY_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"label": READY_LABEL, "error": f"ready_to_listed.py did not finish within {READY_TIMEOUT_S:g} s"}
    if done.returncode != 0 or not out.exists():
        tail = (done.stderr or done.stdout).strip()[-2000:]
        return {"label": READY_LABEL, "error": f"ready_to_listed.py exited {done.returncode}: {tail}"}
    result: dict[str, Any] = {"label": READY_LABEL, **json.loads(out.read_text())}
    summary = result["summary_ms"]
    print(
        f"  ready_to_listed: median {summary['median']:.1f} ms, p90 {summary['p90']:.1f} ms, "
        f"max {summary['max']:.1f} ms ({result['timeouts']} timeouts)",
        flush=True,
    )
    return result


def measure_large_bodies(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """Run ``bench/large_bodies.py`` (its own upstream and a fresh proxy per configuration) and read its JSON."""
    out = work_dir / "large_bodies.json"
    command = [sys.executable, str(BENCH_DIR / "large_bodies.py"), "--body-mib", f"{args.large_body_mib:g}"]
    command += ["--repeat", str(args.large_body_repeat), "--out", str(out), "--log-dir", str(work_dir)]
    command += ["--startup-timeout", str(args.startup_timeout)]
    timeout = LARGE_TIMEOUT_BASE_S + LARGE_TIMEOUT_PER_REPEAT_S * args.large_body_repeat
    print(f"  large_bodies: {args.large_body_mib:g} MiB bodies, {args.large_body_repeat} runs each ...", flush=True)
    process = subprocess.Popen(
        command, env=servers.clean_environment({}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the script then stops the servers it started (each in its own session), then SIGKILL.
        process.terminate()
        try:
            process.communicate(timeout=LARGE_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        return {"label": LARGE_LABEL, "error": f"large_bodies.py did not finish within {timeout:g} s"}
    if process.returncode != 0 or not out.exists():
        tail = (stderr or stdout).strip()[-2000:]
        return {"label": LARGE_LABEL, "error": f"large_bodies.py exited {process.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(out.read_text())
    for config in result["configs"]:
        print(
            f"  large_bodies: N={config['concurrency']}, {config['bodies_admitted_at_once']} at once: "
            f"{config['ok']}/{config['requests']} ok, {config['busy']} proxy_busy, {config['other']} other; "
            f"worker peak RSS up to {config['peak_rss_bytes_max'] / 2**20:,.0f} MiB",
            flush=True,
        )
    return result


def run_benchmarks(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    started: list[Server] = []
    with postgres.database() as pg_dsn, servers.running(started):
        begun = time.monotonic()
        by_name = start_servers(args, work_dir, started, pg_dsn)
        print(
            f"servers ready in {time.monotonic() - begun:.1f} s: "
            + ", ".join(f"{s.name}={s.base_url}" for s in started),
            flush=True,
        )
        probe = by_name["lag_probe"]
        results = {t.key: measure_target(t, args, work_dir, probe) for t in build_targets(by_name, pg_dsn)}
        results["slow_calls"] = measure_slow_calls(by_name, args, work_dir, probe)
        results["slow_profile"] = measure_slow_profile(by_name, args, work_dir)
        results["do_profile"] = measure_do_profile(by_name, args, work_dir)
        results["hop_profile"] = measure_hop_profile(by_name, args, work_dir)
        results["catalog_profile"] = measure_catalog_profile(by_name, args, work_dir)
        results["memory_after_load"] = {
            "label": "worker RSS after every scenario above",
            "embedded_worker_rss_bytes": worker_rss_after_load(by_name["embedded"]),
        }
    print("  observability: per-call costs in process ...", flush=True)  # with no server running
    results["observability"] = {"label": "observability per /v1/do call (in process)",
                                "per_call_us": observability.measure()}  # fmt: skip
    results["startup"] = measure_startup(args, work_dir)  # alone: start-up time is CPU-bound
    results["startup_profile"] = measure_startup_profile(args)
    results["gc_pause"] = measure_gc_pause()
    print("  scale: 500 Connectors, one changing at a time ...", flush=True)
    results["scale"] = {"label": "Kubernetes mode, 500 Connectors x 20 commands (in process)", **scale.measure()}
    print(f"  scale: a change rebuilds in {results['scale']['change_ms_median']:.1f} ms (median)", flush=True)
    if args.ready_count > 0:  # after the servers above are stopped: it runs its own
        results["ready_to_listed"] = measure_ready_to_listed(args, work_dir)
    if args.large_body_mib > 0:  # alone on the machine too: it measures memory and waits on a 10 s budget wait
        results["large_bodies"] = measure_large_bodies(args, work_dir)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    run: dict[str, Any] = {
        "timestamp": now.strftime("%Y%m%dT%H%M%SZ"),
        "date": now.isoformat(timespec="seconds"),
        "machine": machine.facts(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "latency_connections": args.latency_connections,
            "wrk_threads": 1,
            "ready_count": args.ready_count,
            "large_body_mib": args.large_body_mib,
            "large_body_repeat": args.large_body_repeat,
            "proxy_env": env_pairs(args.proxy_env),
        },
    }
    begun = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="connector-proxy-bench-") as work:
        try:
            run["scenarios"] = run_benchmarks(args, Path(work))
        except (servers.ServerError, WrkError) as error:
            print(f"benchmark failed: {error}", file=sys.stderr)
            return 1
    run["elapsed_s"] = round(time.monotonic() - begun, 1)
    run["machine"]["load_average_at_end"] = machine.load_average()
    md_path, raw_path = write_results(run, args.out_dir)
    print(f"\n{report.ratios_text(run)}\nwrote {md_path} and {raw_path} in {run['elapsed_s']} s")
    failed = 0
    profiles = ("do_profile", "hop_profile", "catalog_profile", "slow_profile", "startup_profile")
    for key in ("ready_to_listed", "large_bodies", *profiles):
        scenario = run["scenarios"].get(key, {})
        if "error" in scenario:
            print(f"{key} failed: {scenario['error']}", file=sys.stderr)
            failed = 1
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
