"""Synchronous community commands run in worker processes: a crash, a hang or C code holding the
GIL fails only that call, the worker is replaced, and the proxy keeps answering. Real proxies on
127.0.0.1 with the fixture packages; real segfaults and killed processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector_proxy import isolation
from connector_proxy.app import create_app
from connector_proxy.isolation import ClassCall, Raised, Refused, command_crashed, run_class_call
from connector_proxy.outcome import Outcome
from connector_proxy.settings import Settings
from proxytest.protocol import validate_do_response
from proxytest.servers import serve_in_thread

ProxyFactory = Callable[..., str]

WAIT_S = 15.0
POLL_S = 0.02


def do(http: httpx.Client, command_id: str, body: dict[str, Any] | None = None) -> httpx.Response:
    response = http.post(f"/v1/do/{command_id}", json=body or {})
    validate_do_response(response.status_code, response.json())
    return response


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["error_code"], error["message"]


def pid_of(http: httpx.Client) -> int:
    response = do(http, "failing/Pid")
    assert response.status_code == 200
    pid: int = response.json()["command_response"]["body"]["pid"]
    return pid


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between open and read
        return False
    return state != "Z"  # a zombie has ended; its parent has not reaped it yet


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_S)


@pytest.fixture
def http(start_proxy: ProxyFactory) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=start_proxy(command_timeout=5), timeout=30) as client:
        yield client


def test_a_community_command_runs_in_another_process(http: httpx.Client) -> None:
    assert pid_of(http) != os.getpid()
    assert http.get("/v1/status").json()["isolation"] == {"mode": "process", "workers": 4, "started": True}


def test_with_isolation_thread_it_runs_in_the_proxy(start_proxy: ProxyFactory) -> None:
    with httpx.Client(base_url=start_proxy(isolation="thread"), timeout=30) as http:
        assert pid_of(http) == os.getpid()
        assert http.get("/v1/status").json()["isolation"] == {"mode": "thread"}


def test_workers_start_with_a_proxy_that_has_sync_community_commands(http: httpx.Client) -> None:
    assert http.get("/v1/status").json()["isolation"]["started"] is True


def test_a_proxy_without_them_starts_no_worker(tmp_path: Path) -> None:
    settings = Settings(connector_paths=[tmp_path], connector_paths_only=True)
    with serve_in_thread(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/v1/commands").json() == []
        assert http.get("/v1/status").json()["isolation"] == {"mode": "process", "workers": 4, "started": False}


def test_workers_import_the_command_modules_as_they_start(start_proxy: ProxyFactory, tmp_path: Path) -> None:
    """What the proxy loaded is what its workers run, even once the package is gone from disk."""
    site = tmp_path / "site"
    package = site / "connector_vanishing" / "commands"
    package.mkdir(parents=True)
    (site / "connector_vanishing" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "version.py").write_text(VANISHING)
    with httpx.Client(base_url=start_proxy(connector_paths=[site], isolated_workers=1), timeout=30) as http:
        pid_of(http)  # answered by the one worker: it has run its initializer
        shutil.rmtree(site)
        answer = do(http, "vanishing/Version")
    assert answer.status_code == 200, answer.text
    assert answer.json()["command_response"]["body"] == {"version": 1}


VANISHING = """\
class Version:
    def __init__(self):
        pass

    def execute(self, config, task_data):
        body = {"body": {"version": 1}, "mimetype": "application/json"}
        return {"command_response": body, "command_response_version": 2}
"""


@pytest.mark.parametrize(
    ("how", "said"),
    [("segv", "was killed by SIGSEGV"), ("abort", "was killed by SIGABRT"), ("exit", "exited with status 7")],
)
def test_a_crash_fails_only_its_own_call(http: httpx.Client, tmp_path: Path, how: str, said: str) -> None:
    names = ["first", "second"]
    with ThreadPoolExecutor(len(names)) as pool:
        waiting = [pool.submit(do, http, "failing/WaitForFile", {"directory": str(tmp_path), "name": n}) for n in names]
        wait_for(lambda: all((tmp_path / f"started-{n}").exists() for n in names), "the waiting calls to start")

        status, code, message = error_of(do(http, "failing/Crash", {"how": how}))

        assert not any(call.done() for call in waiting)  # still running in their own workers
        (tmp_path / "release").touch()
        answers = [call.result(timeout=WAIT_S) for call in waiting]

    assert (status, code) == (500, "command_crashed")
    assert f"the process {said}" in message
    assert [a.json()["command_response"]["body"] for a in answers] == [{"name": n, "released": True} for n in names]
    assert pid_of(http) != os.getpid()  # the crashed worker was replaced: calls still run
    assert http.get("/v1/liveness").status_code == 200


def test_a_hung_call_times_out_and_its_worker_is_killed(start_proxy: ProxyFactory, tmp_path: Path) -> None:
    with httpx.Client(base_url=start_proxy(command_timeout=1), timeout=30) as http:
        status, code, _ = error_of(do(http, "failing/Hang", {"directory": str(tmp_path)}))
        hung = int((tmp_path / "pid").read_text())

        wait_for(lambda: not alive(hung), "the hung worker to be killed")
        assert pid_of(http) not in {hung, os.getpid()}
    assert (status, code) == (504, "command_timeout")


def test_code_holding_the_gil_does_not_stop_the_proxy(http: httpx.Client, tmp_path: Path) -> None:
    """The regular expression holds the GIL for minutes: in the proxy's own process nothing
    else would be answered until it ends."""
    with ThreadPoolExecutor(1) as pool:
        hog = pool.submit(do, http, "failing/HoldGil", {"directory": str(tmp_path)})
        wait_for((tmp_path / "started").exists, "the command to start")

        live = http.get("/v1/liveness", timeout=3)
        catalog = http.get("/v1/commands", timeout=3)
        running = not hog.done()
        answer = hog.result(timeout=WAIT_S)

    assert (live.status_code, catalog.status_code, running) == (200, 200, True)
    assert error_of(answer)[:2] == (504, "command_timeout")
    hog_pid = int((tmp_path / "started").read_text())
    wait_for(lambda: not alive(hog_pid), "the worker holding the GIL to be killed")


def test_a_command_raising_system_exit_leaves_its_worker_serving(http: httpx.Client) -> None:
    before = pid_of(http)
    status, code, _ = error_of(do(http, "failing/Exits", {"password": "pw-Zq8v1-never-echo"}))
    assert (status, code) == (500, "SystemExit")
    assert alive(before)


def test_workers_stop_with_the_proxy(community_site: Path) -> None:
    with (
        serve_in_thread(create_app(Settings(connector_paths=[community_site]))) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        worker = pid_of(http)
        assert alive(worker)
    wait_for(lambda: not alive(worker), "the worker to stop")


UNGUARDED = """\
    # A program that builds the app at import time, its start-up code not under a main guard.
    import json, os, sys
    import httpx
    from connector_proxy.app import create_app
    from connector_proxy.settings import Settings
    from proxytest.servers import serve_in_thread

    app = create_app(Settings(connector_paths=[sys.argv[1]], command_timeout=10))
    with serve_in_thread(app) as url:
        answer = httpx.post(url + "/v1/do/failing/Pid", json={}, timeout=30)
    print(json.dumps({"status": answer.status_code, "body": answer.json(), "pid": os.getpid()}))
"""


def test_a_program_without_a_main_guard_is_not_run_again(tmp_path: Path, community_site: Path) -> None:
    """Workers do not import the program's main module: spawn would otherwise re-run this one in
    every worker (starting a server there) and no worker would ever take a call."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(UNGUARDED))
    tests_dir = Path(__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(script), str(community_site)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json_line(done.stdout)
    assert result["status"] == 200
    assert result["body"]["command_response"]["body"]["pid"] != result["pid"]


def json_line(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, stdout
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


# --- the worker side, called directly ---


class Returns:
    def __init__(self, value: Any) -> None:
        self.value = value

    def execute(self, config: Any, task_data: Any) -> Any:
        return self.value

    def execute_async(self, config: Any, task_data: Any, callback_url: str) -> Any:
        return {"command_response": {"body": {"callback": callback_url}, "mimetype": "application/json"}, **V2}


class Raises:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def execute(self, config: Any, task_data: Any) -> Any:
        if self.kind == "exit":
            raise SystemExit("leaving")
        raise LookupError(f"no {config['key']} for {task_data['who']}")


V2 = {"command_response_version": 2, "error": None, "spiff__logs": []}


def call_of(cls: type, method: str = "execute", callback_url: str | None = None, **kwargs: Any) -> ClassCall:
    return ClassCall(
        command_id="test/Command",
        module=__name__,
        qualname=cls.__qualname__,
        method=method,
        kwargs=kwargs,
        config={"key": "k-1"},
        task_data={"who": "ada"},
        callback_url=callback_url,
    )


def test_the_worker_answers_with_the_outcome() -> None:
    done = run_class_call(call_of(Returns, value={"command_response": {"body": [1], "mimetype": "text/csv"}, **V2}))
    assert isinstance(done, Outcome)
    assert (done.status, json.loads(done.body)["command_response"]) == (200, {"body": [1], "mimetype": "text/csv"})


def test_the_worker_answers_202_for_execute_async() -> None:
    done = run_class_call(call_of(Returns, "execute_async", "http://cb", value=None))
    assert isinstance(done, Outcome)
    assert (done.status, json.loads(done.body)["command_response"]["body"]) == (202, {"callback": "http://cb"})


def test_the_worker_sends_back_an_invalid_result_as_a_refusal() -> None:
    assert run_class_call(call_of(Returns, value=["a", "list"])) == Refused(
        500, "invalid_command_result", "Command test/Command returned list instead of a response mapping."
    )


@pytest.mark.parametrize(
    ("kind", "name", "text"), [("lookup", "LookupError", "no k-1 for ada"), ("exit", "SystemExit", "leaving")]
)
def test_the_worker_sends_back_what_was_raised_as_text(kind: str, name: str, text: str) -> None:
    done = run_class_call(call_of(Raises, kind=kind))
    assert isinstance(done, Raised)
    assert (done.name, done.text) == (name, text)
    assert done.traceback.startswith("Traceback") and f"{name}: {text}" in done.traceback


@pytest.mark.parametrize(
    ("exitcode", "said"),
    [(-9, "was killed by SIGKILL"), (-200, "was killed by signal 200"), (3, "exited with status 3"), (None, "ended")],
)
def test_a_crash_says_how_the_worker_ended(exitcode: int | None, said: str) -> None:
    error = command_crashed("c/Cmd", exitcode)
    assert (error.status, error.code) == (500, "command_crashed")
    assert f"(the process {said})" in error.message


NEVER_CLOSED = """\
    # An app used without its lifespan (no shutdown, so nobody closes the workers), then the end.
    import asyncio, gc, sys
    import httpx
    from connector_proxy.app import create_app
    from connector_proxy.settings import Settings

    kept = []

    async def main() -> int:
        app = create_app(Settings(connector_paths=[sys.argv[1]]))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            answer = await http.post("/v1/do/failing/Pid", json={})
        if sys.argv[2] == "kept":
            kept.append(app)
        return answer.status_code

    print(asyncio.run(main()))
    gc.collect()  # a dropped app: its pool object goes, its worker processes must too
"""


@pytest.mark.parametrize("app", ["kept", "dropped"])
def test_a_program_that_never_closes_the_workers_still_exits(tmp_path: Path, community_site: Path, app: str) -> None:
    """multiprocessing joins live worker processes at exit, and idle workers wait for work forever:
    the proxy stops them first, whether the app is still referenced or was dropped."""
    script = tmp_path / "never_closed.py"
    script.write_text(textwrap.dedent(NEVER_CLOSED))
    done = subprocess.run(
        [sys.executable, str(script), str(community_site), app], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "200"), done.stderr[-2000:]


def test_a_pool_is_stopped_by_one_caller_only() -> None:
    """The app's shutdown, a dropped app's finalizer thread and the exit handler may all stop one
    pool; two closing its channels at once ended in EBADF at exit."""

    class SlowPool:
        def __init__(self) -> None:
            self.stops = self.joins = 0

        def stop(self) -> None:
            self.stops += 1
            time.sleep(0.2)  # the window another stopper used to enter

        def join(self, timeout: float) -> None:
            self.joins += 1

    pool = SlowPool()
    isolation._OPEN.add(pool)  # type: ignore[arg-type]
    stoppers = [threading.Thread(target=isolation._stop_and_join, args=(pool,)) for _ in range(3)]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join(timeout=10)
    assert (pool.stops, pool.joins) == (1, 1)
    assert pool not in isolation._OPEN
