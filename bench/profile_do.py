"""Where a ``/v1/do`` call's CPU goes: py-spy samples a proxy process under wrk load.

py-spy (the ``bench`` extra) records the process's stacks, native frames included (``--native``,
250 Hz; it pauses the process for each sample, so the profile run is none of the measured rows),
while wrk drives ``POST /v1/do/http/GetRequestV2`` at 4 connections (to the embedded proxy's worker,
or through the Kubernetes-mode hop's front proxy) or ``GET /v1/commands`` of the 10,000-command
catalog. A sample whose innermost frame is in libc is a system call (a socket write or read, epoll)
and is charged to libc: the kernel's work for whichever code asked. Any other sample is charged to
the package of its innermost Python frame (``aiohttp``, ``uvicorn``, ``connector_proxy``, ...), the
native code it called included: the share of the process's time each spends itself. The event
loop's own work (uvloop) falls to ``asyncio``, whose ``Runner.run`` is the frame below it.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

_LOCATION = re.compile(r"\(([^)]*?):\d+\)$")
RATE_HZ = 250


def py_spy() -> Path | None:
    found = Path(sys.executable).with_name("py-spy")
    return found if found.is_file() else None


SYSTEM = "libc (system calls: socket writes and reads, epoll, ...)"


def package_of(frame: str) -> str:
    """``httpx`` for ``send (httpx/_client.py:1629)``: the frame's top-level module ("" for a native frame)."""
    match = _LOCATION.search(frame)
    location = match.group(1) if match else ""
    if not location.endswith(".py") and "/" not in location:
        return ""  # a native frame: "write (libc.so.6)", "run_forever (loop.c:33192)"
    return location.split("/")[0].removesuffix(".py")


def charged_to(stack: list[str]) -> str:
    """Who a sample is charged to: libc when the innermost frame is in it (a system call made on some
    code's behalf), else the package of the innermost Python frame (native code it called included)."""
    if stack and "(libc.so" in stack[-1]:
        return SYSTEM
    for frame in reversed(stack):
        package = package_of(frame)
        if package:
            return package
    return "native or idle"


def shares(raw: str) -> tuple[int, list[tuple[str, float]]]:
    """Samples, and each package's share of them, largest first."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, number = line.rstrip().rpartition(" ")
        if stack and number.isdigit():
            counts[charged_to(stack.split(";"))] += int(number)
    total = sum(counts.values())
    return total, [(name, count / total) for name, count in counts.most_common()] if total else []


def record(pid: int, seconds: float, out: Path) -> dict[str, Any]:
    """Sample ``pid`` for ``seconds``; the package shares, or why there are none."""
    binary = py_spy()
    if binary is None:
        return {"error": "py-spy is not installed (make bench installs the bench extra)"}
    command = [str(binary), "record", "-p", str(pid), "-d", f"{seconds:g}", "-r", str(RATE_HZ), "-f", "raw"]
    command += ["-o", str(out), "--native"]  # native frames need the process paused per sample
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if not out.exists():
        return {"error": f"py-spy exited {done.returncode}: {(done.stderr or done.stdout).strip()[-500:]}"}
    total, found = shares(out.read_text())
    return {"samples": total, "rate_hz": RATE_HZ, "shares": found}
