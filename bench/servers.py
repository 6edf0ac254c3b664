"""Starting the servers under test as subprocesses on 127.0.0.1, and always stopping them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
STOP_GRACE_S = 5.0
POLL_INTERVAL_S = 0.1


class ServerError(RuntimeError):
    pass


@dataclass
class Server:
    """A started subprocess: its name, base URL, log file and process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def free_port() -> int:
    """A port the kernel reports free right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The current environment without any CONNECTOR_PROXY_* setting, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECTOR_PROXY_")}
    env.update(extra)
    return env


def start(name: str, command: Sequence[str], *, port: int, env: Mapping[str, str], log_dir: Path) -> Server:
    """Start ``command`` in its own session (so its whole process group can be stopped)."""
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,
    )
    return Server(name=name, port=port, process=process, log_path=log_path, log=log)


def get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """A GET with the standard library: (status, body)."""
    status, _, body = fetch(url, timeout=timeout)
    return status, body


def fetch(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 2.0
) -> tuple[int, dict[str, str], bytes]:
    """A GET with the standard library: (status, headers with lower-case names, body as sent, never decoded)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status), {k.lower(): v for k, v in answer.headers.items()}, bytes(answer.read())
    except urllib.error.HTTPError as error:
        return int(error.code), {k.lower(): v for k, v in error.headers.items()}, error.read()


def post_json(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def wait_ready(server: Server, path: str, timeout: float) -> None:
    """Poll ``path`` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if get(server.base_url + path, timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(POLL_INTERVAL_S)
    raise ServerError(f"{server.name} not ready on {server.base_url}{path} within {timeout:g} s:\n{server.log_tail()}")


def stop(server: Server) -> None:
    """SIGTERM the server's process group, SIGKILL it after a bounded grace period."""
    process = server.process
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_GRACE_S)
    server.log.close()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the group this script created with start_new_session=True


@contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    """Stop every server in ``servers`` (including ones appended inside the block) on exit."""
    try:
        yield servers
    finally:
        for server in reversed(servers):
            try:
                stop(server)
            except (OSError, subprocess.SubprocessError) as error:
                print(f"warning: could not stop {server.name} (pid {server.process.pid}): {error}")
