"""Where a ``/v1/do`` call's CPU goes: py-spy samples a proxy process under wrk load.

py-spy (the ``bench`` extra) records the process's stacks (``--nonblocking``, 250 Hz) while wrk drives
``POST /v1/do/http/GetRequestV2`` at 4 connections (to the embedded proxy's worker, or through the
Kubernetes-mode hop's front proxy); each sample is charged to the package of its
innermost Python frame (``aiohttp``, ``httpx``, ``uvicorn``, ``connector_proxy``, ...): the share
of the worker's time each spends itself. Samples with no Python frame are "native or idle".
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


def package_of(frame: str) -> str:
    """``httpx`` for ``send (httpx/_client.py:1629)``: the frame's top-level module."""
    match = _LOCATION.search(frame)
    top = (match.group(1) if match else "").split("/")[0].removesuffix(".py")
    return top or "native or idle"


def shares(raw: str) -> tuple[int, list[tuple[str, float]]]:
    """Samples, and each package's share of them (its innermost frames), largest first."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, number = line.rstrip().rpartition(" ")
        if stack and number.isdigit():
            counts[package_of(stack.split(";")[-1])] += int(number)
    total = sum(counts.values())
    return total, [(name, count / total) for name, count in counts.most_common()] if total else []


def record(pid: int, seconds: float, out: Path) -> dict[str, Any]:
    """Sample ``pid`` for ``seconds``; the package shares, or why there are none."""
    binary = py_spy()
    if binary is None:
        return {"error": "py-spy is not installed (make bench installs the bench extra)"}
    command = [str(binary), "record", "-p", str(pid), "-d", f"{seconds:g}", "-r", str(RATE_HZ), "-f", "raw"]
    command += ["-o", str(out), "--nonblocking"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if not out.exists():
        return {"error": f"py-spy exited {done.returncode}: {(done.stderr or done.stdout).strip()[-500:]}"}
    total, found = shares(out.read_text())
    return {"samples": total, "rate_hz": RATE_HZ, "shares": found}
