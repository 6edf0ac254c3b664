"""Running connector code: a bounded thread pool for sync code, a timeout for everything."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from connector_proxy.errors import DispatchError, ErrorCode

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """What in-process commands run with: the config mapping, the pool and the timeout."""

    config: Mapping[str, Any]
    pool: ThreadPoolExecutor
    timeout: float


def exception_summary(exc: BaseException) -> str:
    """Class name and the raising code location, never the exception's text (it may hold secrets)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def command_failed(command_id: str, exc: BaseException) -> DispatchError:
    """The 500 answer for a command that raised: ``error_code`` is the exception class name
    (what the reference proxy reports, so BPMN error boundaries keep matching)."""
    logger.warning("command raised", extra={"command": command_id, "exception": exception_summary(exc)})
    return DispatchError(500, type(exc).__name__, f"Command {command_id} failed with {type(exc).__name__}.")


def command_timed_out(command_id: str, timeout: float) -> DispatchError:
    logger.warning("command timed out", extra={"command": command_id, "timeout_s": timeout})
    return DispatchError(
        504, ErrorCode.COMMAND_TIMEOUT, f"Command {command_id} did not finish within {timeout:g} seconds."
    )


async def run_guarded(command_id: str, runtime: Runtime, work: Callable[[], Awaitable[T]]) -> T:
    """Await ``work()`` under the runtime's timeout; map timeouts and crashes to dispatch errors."""
    try:
        async with asyncio.timeout(runtime.timeout):
            return await work()
    except TimeoutError:
        raise command_timed_out(command_id, runtime.timeout) from None
    except DispatchError:
        raise
    except Exception as exc:
        raise command_failed(command_id, exc) from None


async def in_thread(runtime: Runtime, func: Callable[[], T]) -> T:
    """Run blocking connector code in the bounded pool; the event loop never blocks.

    A command that outlives its timeout keeps its thread until it returns (Python threads cannot
    be killed); the pool size bounds how many such threads can pile up.
    """
    return await asyncio.get_running_loop().run_in_executor(runtime.pool, func)
