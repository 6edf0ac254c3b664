"""Running connector code: a bounded thread pool for sync code (or worker processes for sync
community code, :mod:`connector_proxy.isolation`), a timeout for everything."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.isolation import IsolatedPool
from connector_proxy.scrubbing import Scrubber

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """What commands run with: the config mapping, the thread pool, the timeout and, unless
    ``CONNECTOR_PROXY_ISOLATION=thread``, the worker processes for sync community commands."""

    config: Mapping[str, Any]
    pool: ThreadPoolExecutor
    timeout: float
    isolation: IsolatedPool | None = None


def exception_summary(exc: BaseException) -> str:
    """Class name and the raising code location, never the exception's text (it may hold secrets)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


MAX_MESSAGE_CHARS = 2000  # of an exception's text in an answer; the log line has all of it


def command_failed(command_id: str, exc: BaseException, sensitive: Iterable[Any] = ()) -> DispatchError:
    """The 500 answer for a command that raised (see :func:`command_raised`)."""
    return command_raised(command_id, type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)), sensitive)


def command_raised(command_id: str, name: str, text: str, trace: str, sensitive: Iterable[Any] = ()) -> DispatchError:
    """The 500 answer for a command that raised ``name`` with ``text``: ``error_code`` is the
    exception class name (what the reference proxy reports, so BPMN error boundaries keep
    matching), the message names it and quotes its text. The text, and the traceback ``trace``
    that goes to the log, are first scrubbed of every value in ``sensitive`` (the request's
    parameters and the configuration)."""
    scrub = Scrubber(sensitive)
    text = scrub(text)
    logger.warning(
        "command raised",
        extra={"command": command_id, "exception": name, "error": text, "traceback": scrub(trace)},
    )
    detail = text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."
    return DispatchError(
        500,
        name,
        f"Command {command_id} failed with {name}: {detail}" if detail else f"Command {command_id} failed with {name}.",
    )


def command_timed_out(command_id: str, timeout: float) -> DispatchError:
    logger.warning("command timed out", extra={"command": command_id, "timeout_s": timeout})
    return DispatchError(
        504, ErrorCode.COMMAND_TIMEOUT, f"Command {command_id} did not finish within {timeout:g} seconds."
    )


async def run_guarded(
    command_id: str, runtime: Runtime, work: Callable[[], Awaitable[T]], sensitive: Iterable[Any] = ()
) -> T:
    """Await ``work()`` under the runtime's timeout; map timeouts and crashes to dispatch errors.
    ``sensitive``: what the request gave the command besides the configuration (its parameters),
    scrubbed from a crash's text."""
    try:
        async with asyncio.timeout(runtime.timeout):
            return await work()
    except TimeoutError:
        raise command_timed_out(command_id, runtime.timeout) from None
    except DispatchError:
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # connector code must not end the proxy
        raise command_failed(command_id, exc, (*sensitive, runtime.config)) from None


async def in_thread(runtime: Runtime, func: Callable[[], T]) -> T:
    """Run blocking connector code in the bounded pool; the event loop never blocks.

    A command that outlives its timeout keeps its thread until it returns (Python threads cannot
    be killed); the pool size bounds how many such threads can pile up.
    """
    return await asyncio.get_running_loop().run_in_executor(runtime.pool, func)
