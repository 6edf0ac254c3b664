"""Running ``wrk`` (one thread, ``--latency``) and parsing what it prints.

Every run uses a Lua script whose ``done`` hook prints one ``WRKJSON {...}`` line with exact counts and
percentiles in microseconds; wrk's own text (``Requests/sec``, the ``Latency Distribution`` block and the
error lines) is parsed too and used when that line is missing, and kept in the raw results.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MARKER = "WRKJSON "

DONE_HOOK = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"mean_us":%.2f,"p50_us":%.1f,"p75_us":%.1f,' ..
    '"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency.mean, latency:percentile(50),
    latency:percentile(75), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

_UNITS_US = {"us": 1.0, "ms": 1_000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}
_DURATION = re.compile(r"^\s*([\d.]+)\s*(us|ms|s|m|h)\s*$")
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+\s*(?:us|ms|s|m|h))\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+\s*(?:us|ms|s|m|h))", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_MAX = re.compile(r"^[ \t]*Latency[ \t]+\S+[ \t]+\S+[ \t]+([\d.]+(?:us|ms|s|m|h))[ \t]", re.MULTILINE)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class Request:
    """What wrk sends: GET by default, or a POST with a JSON body; ``headers`` are added to every request."""

    url: str
    method: str = "GET"
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Measurement:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int
    source: str
    detail: dict[str, Any] = field(default_factory=dict)
    p90_ms: float | None = None
    max_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class WrkError(RuntimeError):
    pass


def lua_string(value: str) -> str:
    """A Lua long-bracket literal: no escape processing, so any text survives unchanged."""
    if "]==]" in value or value.startswith("\n"):
        raise ValueError("value cannot be written as a Lua [==[ ]==] literal")
    return f"[==[{value}]==]"


def lua_script(request: Request) -> str:
    """The request setup (method, body, headers) followed by the ``done`` hook."""
    lines = [f"wrk.method = {lua_string(request.method)}"]
    if request.body is not None:
        lines.append(f"wrk.body = {lua_string(request.body)}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    lines += [f"wrk.headers[ {lua_string(name)} ] = {lua_string(value)}" for name, value in request.headers]
    return "\n".join(lines) + "\n" + DONE_HOOK


def duration_us(text: str) -> float:
    """``'310.00us'``, ``'1.66ms'`` or ``'2.00s'`` as microseconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_US[match.group(2)]


def parse_text(output: str) -> dict[str, Any]:
    """What wrk's human-readable output says (any missing piece is simply absent)."""
    parsed: dict[str, Any] = {}
    if rps := _RPS.search(output):
        parsed["requests_per_s"] = float(rps.group(1))
    if total := _TOTAL.search(output):
        parsed["requests"] = int(total.group(1))
        parsed["duration_us"] = duration_us(total.group(2))
    for percent, value in _PERCENTILE.findall(output):
        parsed[f"p{percent}_us"] = duration_us(value)
    if latency_max := _MAX.search(output):
        parsed["max_us"] = duration_us(latency_max.group(1))
    non_2xx = _NON_2XX.search(output)
    parsed["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    socket = _SOCKET.search(output)
    parsed["socket_errors"] = sum(int(x) for x in socket.groups()) if socket else 0
    return parsed


def parse_hook(output: str) -> dict[str, Any] | None:
    for line in output.splitlines():
        if line.startswith(MARKER):
            loaded: dict[str, Any] = json.loads(line[len(MARKER) :])
            return loaded
    return None


def from_hook(hook: dict[str, Any], text: dict[str, Any]) -> Measurement:
    seconds = hook["duration_us"] / 1e6
    socket_errors = hook["connect"] + hook["read"] + hook["write"] + hook["timeout"]
    return Measurement(
        requests_per_s=hook["requests"] / seconds if seconds > 0 else 0.0,
        p50_ms=hook["p50_us"] / 1000,
        p99_ms=hook["p99_us"] / 1000,
        p90_ms=hook["p90_us"] / 1000,
        max_ms=hook["max_us"] / 1000,
        requests=hook["requests"],
        errors=socket_errors,
        non_2xx=hook["status"],
        source="lua-done-hook",
        detail={"hook": hook, "text": text},
    )


def from_text(text: dict[str, Any]) -> Measurement:
    missing = [key for key in ("requests_per_s", "p50_us", "p99_us") if key not in text]
    if missing:
        raise WrkError(f"wrk output lacks {', '.join(missing)}")
    return Measurement(
        requests_per_s=text["requests_per_s"],
        p50_ms=text["p50_us"] / 1000,
        p99_ms=text["p99_us"] / 1000,
        p90_ms=text["p90_us"] / 1000 if "p90_us" in text else None,
        max_ms=text["max_us"] / 1000 if "max_us" in text else None,
        requests=text.get("requests", 0),
        errors=text["socket_errors"],
        non_2xx=text["non_2xx"],
        source="wrk-text",
        detail={"text": text},
    )


def parse(output: str) -> Measurement:
    text = parse_text(output)
    hook = parse_hook(output)
    return from_hook(hook, text) if hook is not None else from_text(text)


def run_wrk(request: Request, *, connections: int, seconds: float, script_dir: Path) -> Measurement:
    """One wrk run: 1 thread, ``connections`` connections, ``seconds`` long (bounded wait)."""
    content = lua_script(request)
    script = script_dir / f"wrk-{hashlib.sha1(content.encode()).hexdigest()[:12]}.lua"
    script.write_text(content)
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        request.url,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {seconds + 30:.0f} s") from exc
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    measurement = parse(done.stdout)
    return Measurement(**{**measurement.as_dict(), "detail": {**measurement.detail, "output": done.stdout}})
