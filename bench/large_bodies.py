"""A proxy worker's memory under concurrent large ``/v1/do`` bodies, with and without the body budget.

spiff-arena sends a task's whole data with every call (``{"<param>": ..., "spiff__task_data": {...}}``), so
bodies of 34 MiB occur. This script starts the bench upstream (``bench/upstream.py``) and then, for each
configuration, a fresh embedded ``connector-proxy serve`` with one worker on 127.0.0.1 (fresh, so the
worker's peak RSS, ``VmHWM`` in ``/proc/<pid>/status``, belongs to that configuration alone). It checks a
small call, reads the idle worker's RSS, then sends N concurrent ``POST /v1/do/http/GetRequestV2`` whose
``url`` is the upstream and whose ``spiff__task_data`` is a ~34 MiB JSON object of many small rows (dicts
of short strings and numbers), and records per N: answers 200 (with no error in the envelope), ``503
proxy_busy``, anything else, the wall time, each request's time, and the worker's peak RSS and its rise over
the idle RSS. N runs over ``--concurrency`` (1, 4, 8) with the default body budget
(``CONNECTOR_PROXY_MAX_BODY_MEMORY_BYTES``, 100 MiB: two such bodies at once), and once more at
``--wide-concurrency`` (8) with a budget of that many bodies, which admits them all at once: the difference
in peak RSS is what the default budget saves.

The client is a raw socket per request (all released together by a barrier) that keeps reading while it
sends: a ``503`` comes before the body is read and the proxy then closes the connection, which an ordinary
client, still writing, would see as a reset instead of the answer. Every request has a deadline
(``--request-timeout``), and every server is stopped at the end.

    python bench/large_bodies.py [--body-mib 34] [--concurrency 1 4 8] [--wide-concurrency 8] [--out r.json]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import servers
from servers import Server

BENCH_DIR = Path(__file__).resolve().parent
MIB = 1024 * 1024
COMMAND = "http/GetRequestV2"
UPSTREAM_PATH = "/json"
DEFAULT_BUDGET_BYTES = 100 * MIB  # CONNECTOR_PROXY_MAX_BODY_MEMORY_BYTES' default
DEFAULT_WAIT_S = 10.0  # CONNECTOR_PROXY_BODY_WAIT_SECONDS' default
MAX_REQUEST_BYTES = 100 * MIB  # CONNECTOR_PROXY_MAX_REQUEST_BYTES' default: a larger body is a 413
SEND_CHUNK = MIB
BARRIER_TIMEOUT_S = 30.0
WORKER_FIND_TIMEOUT_S = 10.0
LABEL = "worker memory under concurrent large POST /v1/do bodies"


@dataclass(frozen=True)
class Config:
    key: str
    concurrency: int
    budget_bytes: int | None  # None: the proxy's default (not set in the environment)

    @property
    def budget(self) -> int:
        return self.budget_bytes if self.budget_bytes is not None else DEFAULT_BUDGET_BYTES

    def admitted(self, body_bytes: int) -> int:
        """How many bodies of ``body_bytes`` the budget holds at once (a request alone always fits)."""
        return max(1, self.budget // body_bytes)


@dataclass(frozen=True)
class Answer:
    status: int | None
    error_code: str | None
    seconds: float
    problem: str | None = None  # a socket error or timeout, when there is no status

    @property
    def kind(self) -> str:
        if self.status == 200 and self.error_code is None:
            return "ok"
        if self.status == 503 and self.error_code == "proxy_busy":
            return "busy"
        return "other"

    def describe(self) -> str:
        if self.status is None:
            return self.problem or "no answer"
        return f"{self.status} {self.error_code or ''}".strip()


def task_data(rows: int) -> dict[str, Any]:
    """Realistic task data: many small objects (a table of order lines, with a nested customer each)."""
    return {
        "order_id": "PO-2026-000417",
        "approved": False,
        "lines": [
            {
                "line": i,
                "sku": f"SKU-{i:07d}",
                "name": f"item {i % 977}",
                "qty": i % 50 + 1,
                "price": round((i % 1000) * 1.25, 2),
                "active": i % 3 == 0,
                "customer": {"id": i % 101, "email": f"user{i % 101}@example.com", "tier": "gold"},
            }
            for i in range(rows)
        ],
        "padding": "",
    }


def request_body(url: str, target_bytes: int) -> tuple[bytes, int]:
    """A ``/v1/do`` body of exactly ``target_bytes`` (rows plus a padding string), and its row count."""
    one_row = len(json.dumps(task_data(2)["lines"][1], separators=(",", ":"))) + 1
    rows = max(1, target_bytes // one_row - 1)
    while True:
        data = task_data(rows)
        body = json.dumps({"url": url, "spiff__task_data": data}, separators=(",", ":")).encode()
        if len(body) <= target_bytes or rows == 1:
            break
        rows = max(1, rows - (len(body) - target_bytes) // one_row - 1)
    data["padding"] = "x" * (target_bytes - len(body))
    return json.dumps({"url": url, "spiff__task_data": data}, separators=(",", ":")).encode(), rows


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a scan of ``/proc/*/stat``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry))
    return sorted(found)


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid``, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024  # reported in kB
    return values


def find_worker(proxy: Server) -> int:
    """The one worker process under the supervisor started as ``proxy``."""
    deadline = time.monotonic() + WORKER_FIND_TIMEOUT_S
    while time.monotonic() < deadline:
        found = children(proxy.process.pid)
        if len(found) == 1:
            return found[0]
        time.sleep(servers.POLL_INTERVAL_S)
    raise servers.ServerError(f"{proxy.name}: expected one worker process, found {children(proxy.process.pid)}")


def parse_answer(received: bytes, seconds: float) -> Answer:
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        return Answer(None, None, seconds, f"no HTTP answer ({len(received)} bytes)")
    error_code = None
    try:
        error = json.loads(body).get("error")
        error_code = error.get("error_code") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        error_code = "unparsable answer"
    return Answer(int(status_line[1]), error_code, seconds)


def post(port: int, path: str, body: bytes, timeout: float) -> Answer:
    """POST ``body`` on a fresh connection, reading while sending; stop sending once an answer arrives."""
    begun = time.perf_counter()
    deadline = begun + timeout
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {servers.HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    pending = [memoryview(head), memoryview(body)]
    received = bytearray()
    try:
        with socket.create_connection((servers.HOST, port), timeout=timeout) as sock:
            sock.setblocking(False)
            with selectors.DefaultSelector() as selector:
                selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
                while True:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        return Answer(None, None, time.perf_counter() - begun, f"no answer within {timeout:g} s")
                    for _, mask in selector.select(remaining):
                        if mask & selectors.EVENT_READ:
                            chunk = sock.recv(65536)
                            if not chunk:
                                return parse_answer(bytes(received), time.perf_counter() - begun)
                            received += chunk
                            if pending:  # answered before the whole body was read (503, 413): stop sending
                                pending.clear()
                                selector.modify(sock, selectors.EVENT_READ)
                        elif pending and mask & selectors.EVENT_WRITE:
                            try:
                                sent = sock.send(pending[0][:SEND_CHUNK])
                            except BlockingIOError:
                                continue
                            pending[0] = pending[0][sent:]
                            if not pending[0]:
                                pending.pop(0)
                            if not pending:
                                selector.modify(sock, selectors.EVENT_READ)
    except (ConnectionResetError, BrokenPipeError) as error:
        if received:  # the proxy closed after answering, with the rest of our body unread
            return parse_answer(bytes(received), time.perf_counter() - begun)
        return Answer(None, None, time.perf_counter() - begun, type(error).__name__)
    except OSError as error:
        return Answer(None, None, time.perf_counter() - begun, f"{type(error).__name__}: {error}")


def concurrent_posts(port: int, path: str, body: bytes, count: int, timeout: float) -> tuple[list[Answer], float]:
    """``count`` POSTs released together; (their answers, wall time from release to the last answer)."""
    barrier = threading.Barrier(count + 1)

    def one() -> Answer:
        barrier.wait(BARRIER_TIMEOUT_S)
        return post(port, path, body, timeout)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(one) for _ in range(count)]
        barrier.wait(BARRIER_TIMEOUT_S)
        begun = time.perf_counter()
        answers = [future.result(timeout=timeout + BARRIER_TIMEOUT_S) for future in futures]
        wall = time.perf_counter() - begun
    return answers, wall


def check_small_call(proxy: Server, upstream_url: str) -> None:
    """A small call answers the upstream's document: what is measured is not an error path (and it warms up)."""
    status, answer = servers.post_json(f"{proxy.base_url}/v1/do/{COMMAND}", json.dumps({"url": upstream_url}).encode())
    envelope = json.loads(answer) if status == 200 else {}
    response = envelope.get("command_response") or {}
    if status != 200 or envelope.get("error") is not None or response.get("http_status") != 200:
        raise servers.ServerError(f"{proxy.name}: a small POST /v1/do/{COMMAND} answered {status}: {answer[:300]!r}")


def measure_config(
    config: Config, body: bytes, upstream_url: str, args: argparse.Namespace, log_dir: Path
) -> dict[str, Any]:
    port = servers.free_port()
    env = {
        "CONNECTOR_PROXY_HOST": servers.HOST,
        "CONNECTOR_PROXY_PORT": str(port),
        "CONNECTOR_PROXY_WORKERS": "1",
        "CONNECTOR_PROXY_RELOAD_PACKAGES": "false",  # no worker replaced mid-run by a package change
    }
    if config.budget_bytes is not None:
        env["CONNECTOR_PROXY_MAX_BODY_MEMORY_BYTES"] = str(config.budget_bytes)
    proxy_bin = str(Path(sys.executable).with_name("connector-proxy"))
    started: list[Server] = []
    with servers.running(started):
        proxy = servers.start(
            f"proxy-{config.key}", [proxy_bin, "serve"], port=port, env=servers.clean_environment(env), log_dir=log_dir
        )
        started.append(proxy)
        servers.wait_ready(proxy, "/v1/liveness", args.startup_timeout)
        worker = find_worker(proxy)
        check_small_call(proxy, upstream_url)
        idle = memory(worker)
        answers, wall = concurrent_posts(port, f"/v1/do/{COMMAND}", body, config.concurrency, args.request_timeout)
        if worker not in children(proxy.process.pid):
            raise servers.ServerError(f"{proxy.name}: worker {worker} is gone after the requests:\n{proxy.log_tail()}")
        after = memory(worker)
    kinds = Counter(answer.kind for answer in answers)
    return {
        "ok": kinds["ok"],
        "busy": kinds["busy"],
        "other": kinds["other"],
        "other_answers": dict(Counter(a.describe() for a in answers if a.kind == "other")),
        "wall_s": wall,
        "slowest_s": max(answer.seconds for answer in answers),
        "worker_pid": worker,
        "idle_rss_bytes": idle["VmRSS"],
        "peak_rss_bytes": after["VmHWM"],
        "rise_bytes": after["VmHWM"] - idle["VmRSS"],
        "rss_after_bytes": after["VmRSS"],
    }


def aggregate(config: Config, body_bytes: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One configuration over its runs: answers summed, peak RSS and its rise as maximum and minimum."""
    others: Counter[str] = Counter()
    for run in runs:
        others.update(run["other_answers"])
    return {
        "key": config.key,
        "concurrency": config.concurrency,
        "budget_bytes": config.budget,
        "budget_is_default": config.budget_bytes is None,
        "bodies_admitted_at_once": config.admitted(body_bytes),
        "repeats": len(runs),
        "requests": config.concurrency * len(runs),
        "ok": sum(run["ok"] for run in runs),
        "busy": sum(run["busy"] for run in runs),
        "other": sum(run["other"] for run in runs),
        "other_answers": dict(others),
        "wall_s_median": statistics.median(run["wall_s"] for run in runs),
        "slowest_s": max(run["slowest_s"] for run in runs),
        "idle_rss_bytes_median": round(statistics.median(run["idle_rss_bytes"] for run in runs)),
        "peak_rss_bytes_max": max(run["peak_rss_bytes"] for run in runs),
        "peak_rss_bytes_min": min(run["peak_rss_bytes"] for run in runs),
        "rise_bytes_max": max(run["rise_bytes"] for run in runs),
        "rise_bytes_min": min(run["rise_bytes"] for run in runs),
        "runs": runs,
    }


def configs(args: argparse.Namespace, body_bytes: int) -> list[Config]:
    planned = [Config(f"default_n{n}", n, None) for n in args.concurrency]
    if args.wide_concurrency:
        wide = args.wide_concurrency
        planned.append(Config(f"budget{wide}_n{wide}", wide, wide * body_bytes))
    return planned


def mib(value: float) -> str:
    return f"{value / MIB:,.0f}"


def budget_text(config: Config, body_bytes: int) -> str:
    budget = "default" if config.budget_bytes is None else f"{mib(config.budget_bytes)} MiB"
    return f"N={config.concurrency} budget {budget} ({config.admitted(body_bytes)} at once)"


def run_line(result: dict[str, Any]) -> str:
    other = f" {result['other_answers']}" if result["other_answers"] else ""
    return (
        f"{result['ok']} ok, {result['busy']} proxy_busy, {result['other']} other{other}; "
        f"wall {result['wall_s']:.2f} s, slowest {result['slowest_s']:.2f} s; worker idle "
        f"{mib(result['idle_rss_bytes'])} MiB, peak {mib(result['peak_rss_bytes'])} MiB "
        f"(+{mib(result['rise_bytes'])}), after {mib(result['rss_after_bytes'])} MiB"
    )


def summary_line(config: Config, body_bytes: int, result: dict[str, Any]) -> str:
    return (
        f"{budget_text(config, body_bytes)} x {result['repeats']}: {result['ok']}/{result['requests']} ok, "
        f"{result['busy']} proxy_busy, {result['other']} other; slowest {result['slowest_s']:.2f} s; "
        f"peak {mib(result['peak_rss_bytes_min'])}-{mib(result['peak_rss_bytes_max'])} MiB "
        f"(rise {mib(result['rise_bytes_min'])}-{mib(result['rise_bytes_max'])})"
    )


def measure(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    target = round(args.body_mib * MIB)
    started: list[Server] = []
    with servers.running(started):
        port = servers.free_port()
        upstream = servers.start(
            "large-bodies-upstream",
            [sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(port)],
            port=port,
            env=servers.clean_environment({}),
            log_dir=log_dir,
        )
        started.append(upstream)
        servers.wait_ready(upstream, UPSTREAM_PATH, args.startup_timeout)
        upstream_url = upstream.base_url + UPSTREAM_PATH
        body, rows = request_body(upstream_url, target)
        print(f"large bodies: {len(body):,} bytes ({rows:,} rows of task data) per request", file=sys.stderr)
        planned = configs(args, len(body))
        runs: dict[str, list[dict[str, Any]]] = {config.key: [] for config in planned}
        for repeat in range(args.repeat):  # repeats outermost: a drift of the machine's load spreads over all
            for config in planned:
                result = measure_config(config, body, upstream_url, args, log_dir)
                line = f"#{repeat + 1} {budget_text(config, len(body))}: {run_line(result)}"
                print(f"  {line}", file=sys.stderr, flush=True)
                runs[config.key].append(result)
    results = [aggregate(config, len(body), runs[config.key]) for config in planned]
    for config, result in zip(planned, results, strict=True):
        print(f"  {summary_line(config, len(body), result)}", file=sys.stderr)
    return {
        "label": LABEL,
        "command": COMMAND,
        "body_bytes": len(body),
        "rows": rows,
        "default_budget_bytes": DEFAULT_BUDGET_BYTES,
        "wait_s": DEFAULT_WAIT_S,
        "request_timeout_s": args.request_timeout,
        "repeats": args.repeat,
        "configs": results,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--body-mib", type=float, default=34.0, help="Size of each request body, in MiB.")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 4, 8], help="Concurrent requests, default budget."
    )
    parser.add_argument(
        "--wide-concurrency",
        type=int,
        default=8,
        help="Concurrent requests under a budget of that many bodies (0: skip that configuration).",
    )
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each configuration, each on a fresh proxy.")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="Seconds each request may take.")
    parser.add_argument("--startup-timeout", type=float, default=60.0, help="Seconds a server may take to start.")
    parser.add_argument("--out", type=Path, help="Write the result as JSON here (default: stdout).")
    parser.add_argument("--log-dir", type=Path, help="Where the servers' logs go (default: a temporary directory).")
    args = parser.parse_args(argv)
    if not 0 < args.body_mib * MIB < MAX_REQUEST_BYTES:
        parser.error("--body-mib must be above 0 and below CONNECTOR_PROXY_MAX_REQUEST_BYTES' default (100 MiB)")
    if (
        any(n < 1 for n in args.concurrency)
        or args.wide_concurrency < 0
        or args.request_timeout <= 0
        or args.repeat < 1
    ):
        parser.error("concurrency and --repeat must be >= 1 (--wide-concurrency >= 0), --request-timeout > 0")
    return args


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the ``finally`` blocks that stop the servers


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="large-bodies-") as scratch:
        try:
            result = measure(args, args.log_dir or Path(scratch))
        except servers.ServerError as error:
            print(f"large bodies failed: {error}", file=sys.stderr)
            return 1
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
