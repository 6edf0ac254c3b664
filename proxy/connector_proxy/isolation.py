"""Synchronous community commands in worker processes: a crash or a hang ends one worker, which
is replaced, and only the call that caused it fails.

Community code runs in the proxy's trust domain but not in its process: a segfault, an
``os._exit``, C code holding the GIL or a call that never returns cannot stop the proxy from
answering. The pool (pebble's ``ProcessPool``, started with ``spawn`` so every worker is a fresh
interpreter that imports the installed packages as they are now, and not the program's main
module) is created on the first call, so a proxy without community commands starts no process.

What crosses the process boundary is plain data: a :class:`ClassCall` in, and an
:class:`~connector_proxy.outcome.Outcome`, a :class:`Refused` or a :class:`Raised` back. The
worker turns the command's result into the answer itself (JSON encoding included), so an
unpicklable result never reaches the pipe.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import signal
import threading
import traceback
import weakref
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing import spawn
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from pebble import ProcessExpired, ProcessPool

from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.outcome import Outcome, outcome_from_result

logger = logging.getLogger(__name__)

STOP_SECONDS = 5.0  # a stopping proxy waits this long for its workers to exit
WORKER_NAME = "connector-proxy-command-worker"


class _WorkerProcess(SpawnProcess):
    """A spawned worker, named so :func:`_preparation_data` knows it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["name"] = WORKER_NAME
        super().__init__(*args, **kwargs)


class _WorkerContext(SpawnContext):
    Process = _WorkerProcess


_spawn_preparation_data = spawn.get_preparation_data


def _preparation_data(name: str) -> dict[str, Any]:
    """What a spawned process gets to set itself up, minus the program's main module for a
    command worker: the worker runs nothing of it, so it neither re-runs a script whose start-up
    code is not under ``if __name__ == "__main__":`` nor imports the whole proxy (a worker holds
    the interpreter, this module and the connector it runs). Other processes are left as they are."""
    data: dict[str, Any] = _spawn_preparation_data(name)
    if name == WORKER_NAME:
        data.pop("init_main_from_name", None)
        data.pop("init_main_from_path", None)
    return data


def _install_preparation_data() -> None:
    # multiprocessing has no per-process switch for this (the one it offers, spawn's main-module
    # handling, is global); the replacement defers to the original for every other process.
    spawn.get_preparation_data = _preparation_data


@dataclass(frozen=True)
class ClassCall:
    """One community command call, as a worker runs it: ``module.qualname(**kwargs).method(...)``."""

    command_id: str
    module: str
    qualname: str
    method: str  # "execute", or "execute_async" when spiff-arena sent a callback URL
    kwargs: dict[str, Any]
    config: Mapping[str, Any]
    task_data: Any
    callback_url: str | None = None

    @property
    def accepted(self) -> bool:
        return self.method == "execute_async"

    def invoke(self, instance: Any) -> Any:
        """Call the method on ``instance`` (a coroutine for an async one)."""
        bound = getattr(instance, self.method)
        if self.accepted:
            return bound(self.config, self.task_data, callback_url=self.callback_url)
        return bound(self.config, self.task_data)


@dataclass(frozen=True)
class Refused:
    """A dispatch error raised in the worker (an invalid result), sent back as data."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Raised:
    """What connector code raised, as text: the class name, the message and the traceback.
    Scrubbed of secrets by the proxy before it is logged or answered."""

    name: str
    text: str
    traceback: str


def _resolve(module: str, qualname: str) -> Any:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def run_class_call(call: ClassCall) -> Outcome | Refused | Raised:
    """The worker side: run one call and turn everything it does into plain data."""
    try:
        result = call.invoke(_resolve(call.module, call.qualname)(**call.kwargs))
        return outcome_from_result(result, call.command_id, accepted=call.accepted)
    except DispatchError as error:
        return Refused(error.status, error.code, error.message)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the worker goes on
        return Raised(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))


def start_worker(log_level: str, log_format: str, preload: tuple[str, ...] = ()) -> None:
    """The worker initializer: the proxy's log format, no ``KeyboardInterrupt`` from a terminal's
    Ctrl-C (the proxy stops its workers itself), and the command modules imported now, while they
    are the code the proxy loaded (not whatever is on disk at a first call much later)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from connector_proxy.logging_setup import configure_logging

    configure_logging(log_level, log_format)
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception as exc:  # the call will report it; the worker must start
            logger.warning("command module failed to import", extra={"module": module, "exception": type(exc).__name__})


def _started() -> None:
    """A no-op call: scheduling it starts the pool."""


def _exit_description(exitcode: int | None) -> str:
    if exitcode is None:
        return "ended"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def command_crashed(command_id: str, exitcode: int | None) -> DispatchError:
    how = _exit_description(exitcode)
    logger.error("command worker ended", extra={"command": command_id, "exit": how})
    return DispatchError(
        500,
        ErrorCode.COMMAND_CRASHED,
        f"Command {command_id} ended the worker process it ran in (the process {how}); "
        "the worker was replaced and no other call was affected.",
    )


class IsolatedPool:
    """Worker processes for synchronous community commands, started by :meth:`start` or on first
    use.

    A call that outlives the proxy's command timeout is cancelled: its worker is killed and
    replaced (unlike a thread, whose blocked call would run on). A worker that dies fails only its
    own call, with ``command_crashed``.
    """

    def __init__(
        self,
        workers: int,
        *,
        backstop: float,
        log_level: str = "INFO",
        log_format: str = "json",
        preload: tuple[str, ...] = (),
    ) -> None:
        self.workers = workers
        self.backstop = backstop
        self.preload = preload
        self._initargs = (log_level, log_format, preload)
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def _current(self) -> ProcessPool:
        with self._lock:
            if self._pool is None or not self._pool.active:
                _install_preparation_data()
                self._pool = ProcessPool(
                    max_workers=self.workers,
                    initializer=start_worker,
                    initargs=self._initargs,
                    context=_WorkerContext(),
                )
                with _OPEN_LOCK:
                    _OPEN.add(self._pool)
                # An app dropped without its lifespan ending takes its workers with it.
                weakref.finalize(self, _stop_in_background, self._pool).atexit = False
            return self._pool

    def start(self) -> None:
        """Start the workers now (the proxy does at start-up when it has such commands)."""
        self._current().schedule(_started)

    async def run(self, call: ClassCall) -> Outcome | Refused | Raised:
        """Run ``call`` in a worker. Cancelling the await (the command timeout) kills a running
        worker; ``backstop`` seconds bound a call's run even if nothing awaits it any more."""
        pool = self._current()
        copied = replace(call, config=dict(call.config))  # a mapping proxy cannot be pickled
        future = pool.schedule(run_class_call, args=(copied,), timeout=self.backstop)
        try:
            result: Outcome | Refused | Raised = await asyncio.wrap_future(future)
        except ProcessExpired as expired:
            raise command_crashed(call.command_id, expired.exitcode) from None
        except BrokenProcessPool:
            self._discard(pool)
            logger.error("command workers could not start", extra={"command": call.command_id})
            raise DispatchError(
                503,
                ErrorCode.CONNECTOR_UNAVAILABLE,
                f"Command {call.command_id} could not run: its worker processes did not start.",
            ) from None
        return result

    def _discard(self, pool: ProcessPool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        _stop_in_background(pool)

    def describe(self) -> Mapping[str, Any]:
        return {"mode": "process", "workers": self.workers, "started": self._pool is not None}

    def close(self) -> None:
        """Stop the workers (in-flight calls have been drained by then)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _stop_and_join(pool)


_OPEN: set[ProcessPool] = set()  # every pool started and not stopped yet, whoever holds it
_OPEN_LOCK = threading.Lock()


def _stop_and_join(pool: ProcessPool) -> None:
    """Stop a pool and end its workers: pebble ends them in ``join``, ``stop`` only marks the pool.

    One caller stops a pool, the first: the app's shutdown, the finalizer of a dropped app (in a
    thread of its own) and the exit handler can all reach the same pool, and two of them closing
    its channels at once ended in ``EBADF`` at exit."""
    with _OPEN_LOCK:
        if pool not in _OPEN:
            return
        _OPEN.discard(pool)
    pool.stop()  # type: ignore[no-untyped-call]  # pebble leaves it unannotated
    try:
        pool.join(STOP_SECONDS)
    except TimeoutError:
        logger.warning("command workers did not stop", extra={"seconds": STOP_SECONDS})


def _stop_in_background(pool: ProcessPool) -> None:
    """The same off the calling thread (a garbage collection, the event loop)."""
    threading.Thread(target=_stop_and_join, args=(pool,), name="command-workers-stop", daemon=True).start()


@atexit.register  # after multiprocessing's own exit handler (imported above), so it runs before it
def _close_all() -> None:
    """At interpreter exit, stop the workers of every pool still open (an app whose lifespan never
    ended, dropped or not): multiprocessing would otherwise wait for them forever, as they wait for
    work."""
    for pool in list(_OPEN):
        _stop_and_join(pool)
