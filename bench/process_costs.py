"""What a server process costs, read from ``/proc`` and its own ``/metrics``.

- CPU: user + system time of the server's whole process tree (a ``serve`` supervisor, its workers and
  their command worker processes) between two readings; divided by the requests of a wrk run, the
  server's CPU per call.
- Waiting for a CPU: the time the tree's threads were runnable but not running (the second field of
  ``/proc/<pid>/task/<tid>/schedstat``), per second of a run: how much the 2 cores shared with wrk and
  the other servers held a server back. A loop lag well beyond the idle loop's comes with it.
- Taken by the hypervisor: the machine's ``steal`` time (``/proc/stat``, in 10 ms ticks) over a run,
  summed over its CPUs: time a virtual CPU did not run although the kernel had work on it.
- Memory: a process's resident set (``VmRSS``).
- Event loop lag: the proxy's ``connector_proxy_event_loop_lag_seconds`` histogram read before and
  after a run (and ``connector_proxy_event_loop_own_lag_seconds``, the same samples less the loop
  thread's waits for a CPU: the pauses the server caused itself); the run's largest lag is at most
  the smallest bucket bound holding every sample taken meanwhile (a task due every 50 ms; a pause
  shorter than that between two samples is still seen, as the next sample's lateness). The scrape
  that opens the window runs on the same loop, so its own time is in the window too (about 1 ms; it
  was 11 ms while reading the frozen-object gauge walked every frozen object, which is how the bound
  read 25 ms in rows whose requests never waited 5 ms).
- Start-up: from spawning ``connector-proxy serve`` to its first ``200`` on ``/v1/liveness``.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import time
from collections.abc import Mapping
from pathlib import Path

import servers

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LAG = "connector_proxy_event_loop_lag_seconds"
OWN_LAG = "connector_proxy_event_loop_own_lag_seconds"  # the lag less the loop thread's waits for a CPU
_BUCKETS = {
    metric: re.compile(rf'^{re.escape(metric)}_bucket\{{le="([^"]+)"\}} ([0-9.e+]+)$', re.MULTILINE)
    for metric in (LAG, OWN_LAG)
}
STARTUP_POLL_S = 0.005


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from ``/proc/<pid>/task/<tid>/children``)."""
    found, pending = [], [pid]
    while pending and len(found) < 10_000:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid``'s process tree (processes that exited meanwhile are lost)."""
    total = 0
    for process in descendants(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return total / CLOCK_TICKS


def steal_seconds() -> float | None:
    """CPU seconds the hypervisor took from this virtual machine since boot, summed over its CPUs (the
    ``steal`` column of ``/proc/stat``; None where it is not kept). A process the hypervisor stops is
    neither running nor waiting as far as the kernel knows: its time passes as if it ran."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def runqueue_wait_seconds(pid: int) -> float | None:
    """Seconds the threads of ``pid``'s process tree spent runnable, waiting for a CPU (None: no
    schedstat on this kernel)."""
    total, seen = 0, False
    for process in descendants(pid):
        for task in Path(f"/proc/{process}/task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            seen = True
    return total / 1e9 if seen else None


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def worker_pids(pid: int) -> list[int]:
    """The ``serve`` workers: the supervisor's direct children (command worker processes are below them)."""
    return [child for child in descendants(pid) if _parent(child) == pid]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def lag_histograms(base_url: str) -> dict[str, dict[float, float]]:
    """The cumulative buckets (upper bound -> count) of the loop-lag histograms (:data:`LAG`,
    :data:`OWN_LAG`) a server's ``/metrics`` has, read in one scrape (none: an empty dict)."""
    try:
        status, body = servers.get(f"{base_url}/metrics", timeout=5.0)
    except OSError:
        return {}
    if status != 200:
        return {}
    text = body.decode()
    found: dict[str, dict[float, float]] = {}
    for metric, pattern in _BUCKETS.items():
        buckets = {float(bound): float(count) for bound, count in pattern.findall(text)}
        if buckets:
            found[metric] = buckets
    return found


def largest_lag_bound(before: Mapping[float, float] | None, after: Mapping[float, float] | None) -> float | None:
    """Seconds the largest lag sampled between two readings is at most (``inf``: beyond the last bound)."""
    if not before or not after:
        return None
    total = after[math.inf] - before[math.inf]
    if total <= 0:
        return None
    return min(bound for bound in after if after[bound] - before.get(bound, 0.0) >= total)


def share_late(before: Mapping[float, float] | None, after: Mapping[float, float] | None, bound: float) -> float | None:
    """The share of the lag samples taken between two readings that were more than ``bound`` seconds
    late (``bound`` must be one of the histogram's bucket bounds), None without samples."""
    if not before or not after or bound not in after:
        return None
    total = after[math.inf] - before[math.inf]
    if total <= 0:
        return None
    return (total - (after[bound] - before.get(bound, 0.0))) / total


def measure_startup(
    proxy_bin: str, env: Mapping[str, str], log_dir: Path, repeat: int, timeout: float
) -> dict[str, object]:
    """Start ``connector-proxy serve`` ``repeat`` times: start-up seconds, then idle RSS (after 1 s)."""
    startups: list[float] = []
    supervisors: list[int] = []
    workers: list[int] = []
    for attempt in range(repeat):
        port = servers.free_port()
        server_env = {**env, "CONNECTOR_PROXY_HOST": servers.HOST, "CONNECTOR_PROXY_PORT": str(port)}
        begun = time.perf_counter()
        server = servers.start(f"startup-{attempt}", [proxy_bin, "serve"], port=port, env=server_env, log_dir=log_dir)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if server.process.poll() is not None:
                    raise servers.ServerError(f"serve exited with {server.process.returncode}:\n{server.log_tail()}")
                try:
                    if servers.get(f"{server.base_url}/v1/liveness", timeout=1.0)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(STARTUP_POLL_S)
            else:
                raise servers.ServerError(f"serve not live within {timeout:g} s:\n{server.log_tail()}")
            startups.append(time.perf_counter() - begun)
            time.sleep(1.0)
            supervisors.append(rss_bytes(server.process.pid) or 0)
            workers.append(max((rss_bytes(pid) or 0) for pid in worker_pids(server.process.pid)))
        finally:
            servers.stop(server)
    return {
        "repeat": repeat,
        "startup_s": startups,
        "startup_s_median": statistics.median(startups),
        "supervisor_rss_bytes_median": statistics.median(supervisors),
        "worker_rss_bytes_median": statistics.median(workers),
    }
