"""Facts about the machine and software a benchmark run was measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "aiohttp",  # the HTTP connector's and the forwarder's client
    "yarl",
    "httpx",
    "httpcore",
    "anyio",
    "sniffio",
    "orjson",
    "pydantic",
)


def command_output(command: list[str]) -> str | None:
    """First line of a command's stdout (or stderr), or None when it cannot run."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nproc() -> int:
    output = command_output(["nproc"])
    return int(output) if output and output.isdigit() else len(os.sched_getaffinity(0))


def package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_revision() -> str | None:
    revision = command_output(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "-C", str(Path(__file__).parent), "status", "--porcelain", "--untracked-files=no"])
    return f"{revision}{' (+ uncommitted changes)' if dirty else ''}" if revision else None


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: above ~0.5 before a run, something else competes for the CPU."""
    return [round(x, 2) for x in os.getloadavg()]


def facts() -> dict[str, Any]:
    return {
        "nproc": nproc(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "load_average_at_start": load_average(),
        "wrk": command_output(["wrk", "-v"]),
        "git": git_revision(),
        "packages": package_versions(),
    }
