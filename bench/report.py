"""Rendering one benchmark run (the raw results dict) as ``bench/results.md``.

python bench/report.py bench/results/<timestamp>.raw.json   # re-render results.md to stdout
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Run = dict[str, Any]

# The peers' figures (bench/README.md, "The bar"; another machine): what the ratios below are set against.
BAR_ROWS = (
    ("reference proxy (Flask, sync)", "122 req/s, 7.9 ms p50", "80 req/s, 11.3 ms p50"),
    (
        "spiff-arena async proxy (Falcon/granian, httpx, orjson)",
        "9,400 req/s (4 conns), 0.31 ms p50",
        "620 req/s (4 conns), 1.66 ms p50",
    ),
    ("direct call to the upstream (the limit)", "—", "16,400 req/s (4 conns), 0.21 ms p50"),
)
BAR_DIRECT_RPS = 16_400.0
BAR_DIRECT_P50_MS = 0.21
BAR_ASYNC_DO_RPS = 620.0
BAR_ASYNC_DO_P50_MS = 1.66
BAR_ASYNC_COMMANDS_RPS = 9_400.0
MIB = 1024 * 1024


@dataclass(frozen=True)
class Ratio:
    name: str
    compute: Callable[[Run], float | None]
    unit: str
    bar: str


def measurement(run: Run, key: str, connections: int) -> dict[str, Any] | None:
    runs: dict[str, Any] = run.get("scenarios", {}).get(key, {}).get("runs", {})
    found: dict[str, Any] | None = runs.get(str(connections))
    return found


def ready_ms(run: Run, which: str) -> float | None:
    summary = run.get("scenarios", {}).get("ready_to_listed", {}).get("summary_ms") or {}
    value = summary.get(which)
    return float(value) if value is not None else None


def large_configs(run: Run) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = run.get("scenarios", {}).get("large_bodies", {}).get("configs", [])
    return configs


def large_rise_saved(run: Run) -> float | None:
    """Peak RSS rise with a budget admitting every concurrent body ÷ with the default budget, same concurrency."""
    configs = large_configs(run)
    for wide in (c for c in configs if not c["budget_is_default"]):
        same = [c for c in configs if c["budget_is_default"] and c["concurrency"] == wide["concurrency"]]
        if same:
            return divide(float(wide["rise_bytes_max"]), float(same[0]["rise_bytes_max"]))
    return None


def rps(run: Run, key: str) -> float | None:
    found = measurement(run, key, run["settings"]["connections"])
    return float(found["requests_per_s"]) if found else None


def p50(run: Run, key: str) -> float | None:
    found = measurement(run, key, run["settings"]["latency_connections"])
    return float(found["p50_ms"]) if found else None


def observability_share(run: Run, *keys: str) -> float | None:
    """The in-process cost of ``keys`` (``bench/observability.py``) as a fraction of a ``/v1/do`` call's
    time at the throughput connections (1 / its req/s: one worker, whose whole time that is)."""
    costs = run.get("scenarios", {}).get("observability", {}).get("per_call_us") or {}
    throughput = rps(run, "do")
    if throughput is None or not all(key in costs for key in keys):
        return None
    return sum(float(costs[key]) for key in keys) * throughput / 1e6


def scenario(run: Run, key: str) -> dict[str, Any]:
    found: dict[str, Any] = run.get("scenarios", {}).get(key) or {}
    return found


def cpu_ms(run: Run, key: str) -> float | None:
    """Server CPU per call at the throughput connections (its process tree's user + system time)."""
    found = measurement(run, key, run["settings"]["connections"]) or {}
    value = found.get("cpu_ms_per_call")
    return float(value) if value is not None else None


def lag_bound(value: Any) -> float | None:
    if value is None:
        return None
    return float("inf") if value == "inf" else float(value)


def largest_lag_ms(run: Run, *keys: str, field: str = "loop_lag_max_bound_s") -> float | None:
    """The largest event loop lag bound over every run of ``keys`` (the proxies' scenarios), in ms;
    ``field``: the idle loop's (``idle_loop_lag_max_bound_s``) over the same runs."""
    bounds = [
        bound
        for key in keys
        for result in scenario(run, key).get("runs", {}).values()
        if (bound := lag_bound(result.get(field))) is not None
    ]
    return max(bounds) * 1000 if bounds else None


def slow_ratio(run: Run) -> float | None:
    slow = scenario(run, "slow_calls")
    if "proxied" not in slow:
        return None
    return divide(float(slow["proxied"]["requests_per_s"]), float(slow["direct"]["requests_per_s"]))


def slow_catalog_p99(run: Run) -> float | None:
    during = scenario(run, "slow_calls").get("catalog_during")
    return float(during["p99_ms"]) if during else None


def slow_value(run: Run, part: str, key: str, scale: float = 1.0) -> float | None:
    """``key`` of the slow-call scenario's ``part`` run (lag bounds in ms with ``scale`` 1000)."""
    value = lag_bound(scenario(run, "slow_calls").get(part, {}).get(key))
    return value * scale if value is not None else None


def startup_value(run: Run, key: str, scale: float = 1.0) -> float | None:
    value = scenario(run, "startup").get(key)
    return float(value) / scale if value is not None else None


OWN_SECTIONS = frozenset(
    {
        "large_bodies",
        "observability",
        "slow_calls",
        "slow_profile",
        "memory_after_load",
        "startup",
        "startup_profile",
        "scale",
        "gc_pause",
        "do_profile",
        "hop_profile",
        "catalog_profile",
    }
)
PROXY_KEYS = ("liveness", "commands", "commands_gzip", "do", "do_pg", "commands_1000", "commands_1000_gzip")


def divide(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def subtract(left: float | None, right: float | None) -> float | None:
    return left - right if left is not None and right is not None else None


RATIOS = (
    Ratio(
        "/v1/do ÷ direct, throughput",
        lambda r: divide(rps(r, "do"), rps(r, "direct")),
        "x",
        f"async proxy {BAR_ASYNC_DO_RPS / BAR_DIRECT_RPS:.3f}x",
    ),
    Ratio(
        "/v1/do ÷ direct, p50 latency",
        lambda r: divide(p50(r, "do"), p50(r, "direct")),
        "x",
        f"async proxy {BAR_ASYNC_DO_P50_MS / BAR_DIRECT_P50_MS:.1f}x",
    ),
    Ratio(
        "/v1/do minus direct, p50 latency added by the proxy",
        lambda r: subtract(p50(r, "do"), p50(r, "direct")),
        "ms",
        f"async proxy {BAR_ASYNC_DO_P50_MS - BAR_DIRECT_P50_MS:.2f} ms",
    ),
    Ratio(
        "/v1/commands ÷ direct, throughput",
        lambda r: divide(rps(r, "commands"), rps(r, "direct")),
        "x",
        f"async proxy {BAR_ASYNC_COMMANDS_RPS / BAR_DIRECT_RPS:.3f}x",
    ),
    Ratio(
        "/v1/commands (1,000) ÷ /v1/commands (bundled), throughput",
        lambda r: divide(rps(r, "commands_1000"), rps(r, "commands")),
        "x",
        "—",
    ),
    Ratio(
        "/v1/commands ÷ /v1/liveness, throughput", lambda r: divide(rps(r, "commands"), rps(r, "liveness")), "x", "—"
    ),
    Ratio("/v1/do ÷ /v1/liveness, throughput", lambda r: divide(rps(r, "do"), rps(r, "liveness")), "x", "—"),
    Ratio(
        "/v1/commands gzip ÷ identity (bundled), throughput",
        lambda r: divide(rps(r, "commands_gzip"), rps(r, "commands")),
        "x",
        "—",
    ),
    Ratio(
        "/v1/commands gzip ÷ identity (1,000), throughput",
        lambda r: divide(rps(r, "commands_1000_gzip"), rps(r, "commands_1000")),
        "x",
        "—",
    ),
    Ratio(
        "remote hop: /v1/do via front proxy ÷ direct to the runtime, throughput",
        lambda r: divide(rps(r, "do_remote"), rps(r, "do")),
        "x",
        "—",
    ),
    Ratio(
        "remote hop: /v1/do via front proxy minus direct to the runtime, p50 latency added",
        lambda r: subtract(p50(r, "do_remote"), p50(r, "do")),
        "ms",
        "—",
    ),
    Ratio(
        "sync community command: worker process ÷ thread, throughput",
        lambda r: divide(rps(r, "do_community"), rps(r, "do_community_thread")),
        "x",
        "—",
    ),
    Ratio(
        "sync community command: worker process minus thread, p50 latency added",
        lambda r: subtract(p50(r, "do_community"), p50(r, "do_community_thread")),
        "ms",
        "—",
    ),
    Ratio(
        "pg/Query through the proxy ÷ psycopg directly, throughput",
        lambda r: divide(rps(r, "do_pg"), rps(r, "pg_direct")),
        "x",
        "—",
    ),
    Ratio(
        "pg/Query through the proxy minus psycopg directly, p50 latency added",
        lambda r: subtract(p50(r, "do_pg"), p50(r, "pg_direct")),
        "ms",
        "—",
    ),
    Ratio(
        "per-call log line + metrics ÷ a /v1/do call's time (bench/observability.py)",
        lambda r: observability_share(r, "log_us", "metrics_us"),
        "x",
        "< 0.05x",
    ),
    Ratio(
        "per-call log line + metrics + a traceparent taken in and passed on (tracing off) ÷ a /v1/do call's time",
        lambda r: observability_share(r, "log_us", "metrics_us", "propagation_us"),
        "x",
        "< 0.05x",
    ),
    Ratio(
        "per-call log line + metrics + traced call (tracing on) ÷ a /v1/do call's time",
        lambda r: observability_share(r, "log_us", "metrics_us", "span_us"),
        "x",
        "< 0.05x",
    ),
    Ratio("Connector Ready -> listed, median", lambda r: ready_ms(r, "median"), "ms", "—"),
    Ratio("/v1/do: server CPU per call", lambda r: cpu_ms(r, "do"), "ms", "≤ 0.4 ms"),
    Ratio("remote hop: the front proxy's CPU per call", lambda r: cpu_ms(r, "do_remote"), "ms", "—"),
    Ratio(
        "200 concurrent calls to a 500 ms upstream: through /v1/do ÷ direct, throughput",
        slow_ratio,
        "x",
        "≥ 0.95x",
    ),
    Ratio("/v1/commands p99 while those 200 calls run (1 connection)", slow_catalog_p99, "ms", "≤ 10 ms"),
    Ratio(
        "largest event loop lag of the proxy meanwhile (bound)",
        lambda r: slow_value(r, "proxied", "loop_lag_max_bound_s", 1000),
        "ms",
        "≤ 10 ms",
    ),
    Ratio(
        "the same less the worker's waits for a CPU: its own pauses (bound)",
        lambda r: slow_value(r, "proxied", "own_loop_lag_max_bound_s", 1000),
        "ms",
        "≤ 10 ms",
    ),
    Ratio(
        "the same after the run's first 2 s, once wrk's 200 connections are open (bound)",
        lambda r: slow_value(r, "proxied_settled", "own_loop_lag_max_bound_s", 1000),
        "ms",
        "≤ 10 ms",
    ),
    Ratio(
        "the idle loop beside it over the same run: the machine's own share (bound)",
        lambda r: slow_value(r, "proxied", "idle_loop_lag_max_bound_s", 1000),
        "ms",
        "—",
    ),
    Ratio(
        "200 slow calls through /v1/do, no catalog requests: server CPU per call",
        lambda r: slow_value(r, "alone", "cpu_ms_per_call"),
        "ms",
        "—",
    ),
    Ratio(
        "largest event loop lag over the embedded and 1,000-command proxies' runs (bound)",
        lambda r: largest_lag_ms(r, *PROXY_KEYS),
        "ms",
        "≤ 10 ms",
    ),
    Ratio(
        "the same less the proxies' waits for a CPU: their own pauses (bound)",
        lambda r: largest_lag_ms(r, *PROXY_KEYS, field="own_loop_lag_max_bound_s"),
        "ms",
        "≤ 10 ms",
    ),
    Ratio(
        "the idle loop beside them over the same runs: the machine's own share (bound)",
        lambda r: largest_lag_ms(r, *PROXY_KEYS, field="idle_loop_lag_max_bound_s"),
        "ms",
        "—",
    ),
    Ratio(
        "a full garbage collection's pause, 1,000 commands loaded, frozen (what a serve worker does)",
        lambda r: scenario(r, "gc_pause").get("frozen_ms"),
        "ms",
        "≤ 10 ms",
    ),
    Ratio(
        "the same, CONNECTOR_PROXY_GC_FREEZE=false",
        lambda r: scenario(r, "gc_pause").get("unfrozen_ms"),
        "ms",
        "—",
    ),
    Ratio(
        "largest event loop lag, 1,000 commands, CONNECTOR_PROXY_GC_FREEZE=false (bound)",
        lambda r: largest_lag_ms(r, "commands_1000_unfrozen"),
        "ms",
        "—",
    ),
    Ratio(
        "500 Connectors, 10,000 commands: rebuild after one Connector's change, median",
        lambda r: scenario(r, "scale").get("change_ms_median"),
        "ms",
        "≤ 100 ms",
    ),
    Ratio(
        "/v1/commands gzip, 10,000 commands (Kubernetes mode) ÷ bundled catalog gzip (embedded), throughput",
        lambda r: divide(rps(r, "commands_10000_gzip"), rps(r, "commands_gzip")),
        "x",
        "1x (as fast as the bundled one)",
    ),
    Ratio(
        "serve start-up to /v1/liveness 200, median",
        lambda r: startup_value(r, "startup_s_median", 1e-3),
        "ms",
        "≤ 1000 ms",
    ),
    Ratio(
        "serve worker RSS idle, median",
        lambda r: startup_value(r, "worker_rss_bytes_median", MIB),
        "MiB",
        "≤ 80 MiB",
    ),
    Ratio(
        "large bodies: worker peak RSS rise, every concurrent body admitted ÷ default budget (same concurrency)",
        large_rise_saved,
        "x",
        "—",
    ),
)


def fmt_ratio(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if value == float("inf"):
        return "> 2500 ms" if unit == "ms" else "inf"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:.3f} ms" if unit == "ms" else f"{value:.3f}x"


def machine_table(run: Run) -> list[str]:
    facts = run["machine"]
    settings = run["settings"]
    packages = ", ".join(f"{name} {version}" for name, version in facts["packages"].items())
    rows = [
        ("date (UTC)", run["date"]),
        ("nproc", str(facts["nproc"])),
        ("CPU model", facts["cpu_model"]),
        ("Python", f"{facts['python']} ({facts['python_implementation']})"),
        ("kernel", facts["kernel"]),
        ("load average (1/5/15 min) at start", " / ".join(str(x) for x in facts["load_average_at_start"])),
        ("load average (1/5/15 min) at end", " / ".join(str(x) for x in facts.get("load_average_at_end", []))),
        ("wrk", f"{facts['wrk']}; 1 thread, {settings['warmup_s']:g} s warm-up, {settings['duration_s']:g} s runs"),
        ("proxy extra env", ", ".join(f"{k}={v}" for k, v in settings["proxy_env"].items()) or "none"),
        ("git", facts["git"] or "unknown"),
        ("packages", packages),
    ]
    return ["| fact | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def ready_row(scenario: dict[str, Any]) -> str:
    """Ready -> listed: p50/p90/max are the median, p90 and maximum over the Connectors; requests is how many
    were timed; errors are the ones not listed in time; bytes is the catalog's size at the end."""
    if "error" in scenario:
        return f"| {scenario['label']} | — | — | failed | — | — | — | — | — | — | — | — | — | — |"
    summary = scenario["summary_ms"]
    return (
        f"| {scenario['label']} | — | — | {fmt_ms(summary['median'])} | {fmt_ms(summary['p90'])} | — "
        f"| {fmt_ms(summary['max'])} | {scenario['count']:,} | {scenario['timeouts']} "
        f"| {scenario['catalog_bytes_at_end']:,} | — | — | — | — |"
    )


def results_table(run: Run) -> list[str]:
    lines = [
        "| scenario | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | requests | errors + non-2xx "
        "| response bytes | server CPU ms/call | waiting for a CPU ms/s | loop lag max | own loop lag max "
        "| idle loop's lag max | VM steal ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, scenario in run["scenarios"].items():
        if key in OWN_SECTIONS:
            continue
        if "runs" not in scenario:
            lines.append(ready_row(scenario))
            continue
        for connections, result in sorted(scenario["runs"].items(), key=lambda item: int(item[0])):
            problems = result["errors"] + result["non_2xx"]
            lines.append(
                f"| {scenario['label']} | {connections} | {result['requests_per_s']:,.0f} | {result['p50_ms']:.3f} "
                f"| {fmt_ms(result.get('p90_ms'))} | {result['p99_ms']:.3f} | {fmt_ms(result.get('max_ms'))} "
                f"| {result['requests']:,} | {problems} | {scenario['check']['bytes']:,} "
                f"| {fmt_ms(result.get('cpu_ms_per_call'))} | {fmt_wait(result.get('cpu_wait_ms_per_s'))} "
                f"| {fmt_lag(result.get('loop_lag_max_bound_s'))} | {fmt_lag(result.get('own_loop_lag_max_bound_s'))} "
                f"| {fmt_lag(result.get('idle_loop_lag_max_bound_s'))} | {fmt_steal(result.get('steal_ms'))} |"
            )
    return lines


def fmt_wait(value: Any) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_lag(value: Any) -> str:
    bound = lag_bound(value)
    if bound is None:
        return "—"
    return "> 2.5 s" if bound == float("inf") else f"≤ {bound * 1000:g} ms"


def slow_row(name: str, result: dict[str, Any]) -> str:
    """A slow-call run; a window of one without its wrk figures (its lags only) shows "—" for them."""
    if "requests" in result:
        problems = result["errors"] + result["non_2xx"]
        load = (
            f"| {result['requests_per_s']:,.0f} | {result['p50_ms']:.3f} | {result['p99_ms']:.3f} "
            f"| {fmt_ms(result.get('max_ms'))} | {result['requests']:,} | {problems} "
        )
    else:
        load = "| — | — | — | — | — | — "
    return (
        f"| {name} {load}"
        f"| {fmt_ms(result.get('cpu_ms_per_call'))} | {fmt_wait(result.get('cpu_wait_ms_per_s'))} "
        f"| {fmt_lag(result.get('loop_lag_max_bound_s'))} | {fmt_share(result.get('loop_lag_share_late'))} "
        f"| {fmt_lag(result.get('own_loop_lag_max_bound_s'))} | {fmt_share(result.get('own_loop_lag_share_late'))} "
        f"| {fmt_lag(result.get('idle_loop_lag_max_bound_s'))} | {fmt_share(result.get('idle_loop_lag_share_late'))} "
        f"| {fmt_steal(result.get('steal_ms'))} |"
    )


def fmt_steal(value: Any) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_share(value: Any) -> str:
    return "—" if value is None else f"{value:.1%}"


def slow_section(slow: dict[str, Any]) -> list[str]:
    """The concurrency scenario: direct, through /v1/do alone, and with the catalog requests meanwhile."""
    lines = [
        f"## {slow['label']}",
        "",
        "wrk with 200 connections to an upstream that answers every request 500 ms after it arrived: directly; "
        "through `POST /v1/do/http/GetRequestV2` of the embedded proxy (one worker, the HTTP connector's default "
        "pool limits); then through it again while a second wrk keeps one connection on `GET /v1/commands` of the "
        "same proxy. The 200 connections start together and the upstream keeps them in step, so the proxy gets "
        "their answers in bursts: each burst is that many calls' work on one event loop, and a catalog request "
        "that arrives during one waits for it. The first burst is the largest: wrk opens its 200 connections at "
        "once, and each call needs a new upstream connection (those of the run before were closed when its "
        "calls were cancelled). The rows *after its first 2 s* read the lags over the rest of the run.",
        "",
        "Server columns, over each run: **CPU ms/call** is the proxy's CPU per `/v1/do` call (in the last run, "
        "the catalog requests' CPU is in it too); **CPU wait** the time its threads were runnable but not running, "
        "in ms per s; **loop lag** the largest lateness of the worker's 50 ms lag task (a bucket bound) and **late** "
        "the share of its samples more than 10 ms late; **own** the same samples less the time the worker's thread "
        "waited for a CPU since the task went to sleep (`connector_proxy_event_loop_own_lag_seconds`): the pauses "
        "the worker caused itself; **idle loop** the same for the idle probe loop "
        "(`bench/lag_probe.py`) over the same run: the machine's own share; **VM steal** the time the hypervisor "
        "took from the machine's CPUs meanwhile (it counts as the worker's own lag when it stops the worker). "
        "wrk 4.1 adds synthetic samples to "
        "the latencies after a stall, so one pause on the single catalog connection weighs on its p99 as "
        "many requests would.",
        "",
        "| run | req/s | p50 ms | p99 ms | max ms | requests | errors + non-2xx | server CPU ms/call "
        "| CPU wait ms/s | loop lag | late | own loop lag | own late | idle loop lag | idle late | VM steal ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        slow_row("direct", slow["direct"]),
    ]
    settled = f"the same run after its first {slow.get('settle_s', 2):g} s (every connection open)"
    if "alone" in slow:
        lines.append(slow_row("through /v1/do", slow["alone"]))
    if "alone_settled" in slow:
        lines.append(slow_row(settled, slow["alone_settled"]))
    lines.append(slow_row("through /v1/do, catalog requests meanwhile", slow["proxied"]))
    if "proxied_settled" in slow:
        lines.append(slow_row(settled, slow["proxied_settled"]))
    lines += [slow_row("GET /v1/commands meanwhile (1 conn)", slow["catalog_during"]), ""]
    return lines


def process_section(run: Run) -> list[str]:
    """The concurrency scenario, start-up and memory."""
    slow, startup = scenario(run, "slow_calls"), scenario(run, "startup")
    memory = scenario(run, "memory_after_load").get("embedded_worker_rss_bytes")
    lines: list[str] = []
    if "proxied" in slow:
        lines += slow_section(slow)
    lines += profile_section(
        scenario(run, "slow_profile"),
        "Where the worker's time goes during the 200 slow calls and the catalog requests",
        "the embedded proxy's worker",
        "`POST /v1/do/http/GetRequestV2` to the 500 ms upstream at 200 connections and `GET /v1/commands` at one, "
        "in a run of their own after the measured ones",
        run,
        connections="",
    )
    lines += profile_section(
        scenario(run, "do_profile"),
        "Where a /v1/do call's time goes",
        "the embedded proxy's worker",
        "`POST /v1/do/http/GetRequestV2`",
        run,
    )
    lines += profile_section(
        scenario(run, "hop_profile"),
        "Where the Kubernetes-mode hop's front proxy spends its time",
        "the front proxy",
        "`POST /v1/do/http/GetRequestV2` through it to the embedded proxy",
        run,
        note="The front proxy forwards the request's bytes to the runtime and the answer's back.",
    )
    lines += profile_section(
        scenario(run, "catalog_profile"),
        "Where serving 10,000 commands goes (Kubernetes mode, gzip)",
        "the 500-Connector proxy",
        "`GET /v1/commands` with `Accept-Encoding: gzip, deflate`",
        run,
        note=catalog_note(run),
    )
    cluster = scenario(run, "scale")
    if "change_ms_median" in cluster:
        lines += [
            "## Kubernetes mode at scale",
            "",
            f"`bench/scale.py`, in process: {cluster['connectors']} Connectors of "
            f"{cluster['commands'] // cluster['connectors']} SDK-shaped commands ({cluster['commands']:,} in all), "
            "each with its catalog ConfigMap, turned into a registry by the proxy's own path (decode and verify each "
            "ConfigMap, build the registry); then one Connector's catalog changes at a time and the registry is "
            f"rebuilt over all of them, {len(cluster['change_ms'])} times. The wrk rows `10,000 commands` above serve "
            "that registry.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| first build (every ConfigMap decoded) | {cluster['first_build_ms']:.0f} ms |",
            f"| rebuild after one Connector's change, median | {cluster['change_ms_median']:.1f} ms |",
            f"| rebuild after one Connector's change, max | {cluster['change_ms_max']:.1f} ms |",
            f"| memory the registry holds (tracemalloc) | {cluster['registry_bytes'] / MIB:.0f} MiB |",
            f"| catalog, identity / gzip | {cluster['catalog_bytes'] / MIB:.1f} MiB / "
            f"{cluster['catalog_gzip_bytes'] / 1024:.0f} KiB |",
            "",
        ]
    if startup:
        lines += [
            "## Start-up and memory",
            "",
            f"`connector-proxy serve` (embedded, bundled connectors, one worker) started {startup['repeat']} times "
            "alone on the machine: from spawning it to its first 200 on `/v1/liveness`; resident memory 1 s later. "
            "After load: the embedded proxy's worker once every scenario above had run against it.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| start-up, median (all: {', '.join(f'{v:.2f}' for v in startup['startup_s'])} s) "
            f"| {startup['startup_s_median']:.3f} s |",
            f"| worker RSS idle, median | {startup['worker_rss_bytes_median'] / MIB:.0f} MiB |",
            f"| supervisor RSS idle, median | {startup['supervisor_rss_bytes_median'] / MIB:.0f} MiB |",
            f"| worker RSS after load | {memory / MIB:.0f} MiB |" if memory else "| worker RSS after load | — |",
            "",
        ]
    return lines + startup_profile_section(scenario(run, "startup_profile"))


def profile_section(
    profile: dict[str, Any],
    title: str,
    process: str,
    load: str,
    run: Run,
    note: str = "",
    connections: str | None = None,
) -> list[str]:
    """A py-spy profile: each package's share of the samples (innermost frames); ``connections``: how
    the load's connections are said ("" when ``load`` says it), by default the run's throughput count."""
    if connections is None:
        connections = f" at {run['settings']['connections']} connections"
    if "error" in profile:
        return [f"## {title}", "", f"Not measured: {profile['error']}", ""]
    if not profile.get("shares"):
        return []
    return [
        f"## {title}",
        "",
        f"py-spy sampled {process} ({profile['samples']:,} samples at {profile['rate_hz']} Hz) while wrk drove "
        f"{load}{connections}, native frames included. A sample whose innermost "
        "frame is in libc is a system call (socket writes and reads, epoll) and is charged to libc; any other to the "
        "package of its innermost Python frame, the native code it called included (the event loop's own work, "
        "uvloop's, to `asyncio`)." + (f" {note}" if note else ""),
        "",
        "| package | share of the samples |",
        "|---|---:|",
        *(f"| `{name}` | {share:.1%} |" for name, share in profile["shares"] if share >= 0.005),
        "",
    ]


def catalog_note(run: Run) -> str:
    """How much more the 10,000-command gzip catalog sends than the bundled one, from this run."""
    large, bundled = (
        scenario(run, key).get("check", {}).get("bytes") for key in ("commands_10000_gzip", "commands_gzip")
    )
    text = "The catalog is served as prebuilt gzip bytes, so what is left is sending them"
    return f"{text}: {large / bundled:.0f} times the bundled catalog's gzip body." if large and bundled else f"{text}."


STARTUP_PACKAGES = 15


def startup_profile_section(profile: dict[str, Any]) -> list[str]:
    """The start-up's phases and its imports' self time by package."""
    if "import_s" not in profile:
        return []
    packages = profile["packages_us"]
    total_us = sum(us for _, us in packages)
    shown = packages[:STARTUP_PACKAGES]
    rest = total_us - sum(us for _, us in shown)
    return [
        "## Where start-up goes",
        "",
        f"`bench/startup_profile.py`: a fresh `python -X importtime` does what a `serve` worker does before it "
        f"answers, timing each phase (the median of {profile['repeat']} runs; Python's import timer adds its own "
        "cost to the imports). The supervisor's fork, the worker's boot and the first request make up the rest of "
        "the start-up above.",
        "",
        "| phase | s |",
        "|---|---:|",
        f"| import the server, the app and their libraries ({profile['modules']:,} modules) | "
        f"{profile['import_s']:.3f} |",
        f"| build the app (load the bundled connectors, build the registry) | {profile['create_app_s']:.3f} |",
        f"| the app's start-up (lifespan) | {profile['lifespan_s']:.3f} |",
        "",
        "Imports' self time by top-level package, over both phases (the bundled connectors and their libraries "
        "are imported while the app is built):",
        "",
        "| package | ms |",
        "|---|---:|",
        *(f"| `{name}` | {us / 1000:.1f} |" for name, us in shown),
        f"| {len(packages) - len(shown)} other packages | {rest / 1000:.1f} |",
        f"| all | {total_us / 1000:.1f} |",
        "",
        *(
            [
                "`make bench` runs from the development environment, which holds the test tools too: there httpx "
                "imports its command-line client's `rich`, which the image does not install.",
                "",
            ]
            if any(name == "rich" for name, _ in packages)
            else []
        ),
    ]


def observability_section(run: Run) -> list[str]:
    costs = run.get("scenarios", {}).get("observability", {}).get("per_call_us")
    if not costs:
        return []
    throughput = rps(run, "do")
    call_us = 1e6 / throughput if throughput else None
    names = {
        "log_us": "the call's `command answered` log line (JSON, to a file)",
        "metrics_us": "its metrics (in flight, counters, latency histogram)",
        "propagation_us": "taking a `traceparent` in and passing it on (tracing off)",
        "span_us": "with `CONNECTOR_PROXY_TRACING=true`: the trace context taken in and passed on, and the call's span "
        "(batch export to a sink)",
    }
    lines = [
        "## Observability per /v1/do call",
        "",
        "`bench/observability.py`, in process after the servers stopped: microseconds per call, and that as a "
        "share of a `/v1/do` call's time in this run (1 / the embedded `/v1/do` row's req/s at "
        f"{run['settings']['connections']} connections, one worker: "
        + (f"{call_us:,.0f} µs)." if call_us else "not measured)."),
        "",
        "| cost | µs per call | share of a call |",
        "|---|---:|---:|",
    ]
    for key, name in names.items():
        if key in costs:
            share = f"{float(costs[key]) / call_us:.1%}" if call_us else "—"
            lines.append(f"| {name} | {float(costs[key]):.1f} | {share} |")
    return [*lines, ""]


def ready_notes(run: Run) -> list[str]:
    scenario = run["scenarios"].get("ready_to_listed")
    if scenario is None:
        return []
    if "error" in scenario:
        return ["", f"Ready -> listed failed: {scenario['error'].splitlines()[0]}"]
    return [
        "",
        f"Ready -> listed: the clock starts when the emulator commits the Ready status and stops when a poll lists "
        f"the command; the emulator serves in the measuring loop and spends a median "
        f"{fmt_ms(scenario.get('commit_to_answer_ms_median'))} ms finishing the PATCH after that commit (included "
        f"in every sample; its watch stream to the proxy waits for it). Status PATCH round trip: median "
        f"{fmt_ms(scenario.get('patch_ms_median'))} ms; from sending the PATCH to listed: median "
        f"{fmt_ms(scenario.get('from_send_ms_median'))} ms.",
    ]


def large_bodies_section(run: Run) -> list[str]:
    """Worker memory under concurrent large bodies (``bench/large_bodies.py``): one row per configuration."""
    scenario = run["scenarios"].get("large_bodies")
    if scenario is None:
        return []
    lines = ["## Large request bodies: worker memory", ""]
    if "error" in scenario:
        return [*lines, f"Failed: {scenario['error'].splitlines()[0]}", ""]
    body = scenario["body_bytes"]
    lines += [
        f"Each run starts a fresh one-worker embedded proxy and sends N concurrent `POST /v1/do/{scenario['command']}` "
        f"(to the bench upstream) of a {body / MIB:g} MiB body whose `spiff__task_data` holds {scenario['rows']:,} "
        f"small rows; **at once** is how many such bodies the budget (`CONNECTOR_PROXY_MAX_BODY_MEMORY_BYTES`) "
        f"admits together (the others wait up to {scenario['wait_s']:g} s, then get `503 proxy_busy`); **peak RSS** "
        f"is the worker's VmHWM and **rise** that peak minus the idle worker's RSS, each the maximum (minimum) over "
        f"{scenario['repeats']} runs; answers are summed over the runs. The last column is the rise per body the "
        "budget lets in at once, in body sizes: what a parsed body of small objects costs.",
        "",
        "| budget | at once | concurrent requests | requests | 200 | 503 proxy_busy | other | wall s (median) "
        "| slowest answer s | idle RSS MiB | peak RSS MiB, max (min) | rise MiB, max (min) "
        "| max rise ÷ (min(N, at once) x body) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for config in scenario["configs"]:
        in_flight = min(config["concurrency"], config["bodies_admitted_at_once"])
        budget = f"{config['budget_bytes'] / MIB:,.0f} MiB" + (" (default)" if config["budget_is_default"] else "")
        other = config["other"]
        if config["other_answers"]:
            other = f"{other} ({', '.join(f'{k}: {v}' for k, v in config['other_answers'].items())})"
        lines.append(
            f"| {budget} | {config['bodies_admitted_at_once']} | {config['concurrency']} | {config['requests']} "
            f"| {config['ok']} | {config['busy']} | {other} | {config['wall_s_median']:.2f} "
            f"| {config['slowest_s']:.2f} | {config['idle_rss_bytes_median'] / MIB:,.0f} "
            f"| {config['peak_rss_bytes_max'] / MIB:,.0f} ({config['peak_rss_bytes_min'] / MIB:,.0f}) "
            f"| {config['rise_bytes_max'] / MIB:,.0f} ({config['rise_bytes_min'] / MIB:,.0f}) "
            f"| {config['rise_bytes_max'] / (in_flight * body):.1f}x |"
        )
    return [*lines, ""]


def ratios_table(run: Run) -> list[str]:
    lines = ["| ratio | this run | design bar as the same ratio |", "|---|---:|---|"]
    lines += [f"| {r.name} | {fmt_ratio(r.compute(run), r.unit)} | {r.bar} |" for r in RATIOS]
    return lines


def bar_table() -> list[str]:
    lines = ["| system | `/v1/commands` | `/v1/do` HTTP GET to the local upstream |", "|---|---|---|"]
    return lines + [f"| {system} | {commands} | {do} |" for system, commands, do in BAR_ROWS]


def render(run: Run, raw_name: str) -> str:
    settings = run["settings"]
    sections = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`bench/run.py`) on {run['date']}; raw data: `{raw_name}` (not committed). "
        "Compare numbers only within this file: they come from one run on one machine.",
        "",
        "## Machine",
        "",
        *machine_table(run),
        "",
        "## Scenarios",
        "",
        f"Throughput is the {settings['connections']}-connection row; latency is read from the "
        f"{settings['latency_connections']}-connection row. All servers run one worker on 127.0.0.1. "
        "gzip rows send `Accept-Encoding: gzip, deflate` (python-requests' default) and their response bytes are "
        "the gzip body. The Ready -> listed row is no wrk run: its p50/p90/max are the median, p90 and maximum over "
        "the Connectors timed (requests), errors the ones not listed within 10 s, bytes the catalog at the end.",
        "",
        *results_table(run),
        *ready_notes(run),
        "",
        *process_section(run),
        *large_bodies_section(run),
        *observability_section(run),
        "## Ratios (computed from this run)",
        "",
        f"Throughput ratios use {settings['connections']} connections, latency ratios "
        f"{settings['latency_connections']} connection(s). The design's figures were measured on another machine "
        "against another upstream, so only their ratios are set beside ours, as context.",
        "",
        *ratios_table(run),
        "",
        "## The bar (the peers, measured on another machine: bench/README.md)",
        "",
        *bar_table(),
        "",
    ]
    return "\n".join(sections)


def ratios_text(run: Run) -> str:
    return "\n".join(f"{r.name}: {fmt_ratio(r.compute(run), r.unit)} (bar: {r.bar})" for r in RATIOS)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python bench/report.py bench/results/<timestamp>.raw.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    sys.stdout.write(render(json.loads(path.read_text()), raw_name=f"results/{path.name}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
