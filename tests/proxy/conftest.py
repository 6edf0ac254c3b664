"""Fixtures of the proxy's tests that forward commands to workloads in process: servers to stop, a
runtime, a Forwarder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from types import MappingProxyType

import pytest

from connector_proxy.execution import Runtime
from connector_proxy.kubernetes.forwarding import Forwarder


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield Runtime(config=MappingProxyType({}), pool=pool, timeout=5)
    pool.shutdown()


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    forwarder = Forwarder()
    yield forwarder
    await forwarder.aclose()
