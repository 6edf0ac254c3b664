"""``POST /v1/recheck/{namespace}/{name}``: re-discover one Connector now.

Proxies ask for it when a url-sourced Connector's proxy refuses a forwarded call (401 or 403), so
that a changed key shows on the Connector's status (``Ready=False`` reason ``Unauthorized``) within
seconds instead of at the next periodic re-discovery. The proxies cannot find out themselves: they
never read Secrets through the API and never write a status.

No authentication: a request carries no data and learns nothing (every accepted request gets the
same 202, whether or not the Connector exists); it only makes the operator re-read the cluster's
state (the Connector, its Secret, the endpoint's catalog) and write what it finds, as the periodic
re-discovery does. What it can cost is bounded: only watched namespaces (404 otherwise, and for
anything that is not a namespace and a Connector name), one recheck of a Connector at a time and at
most one every ``interval`` seconds, at most ``max_running`` at once; every other request is
answered 202 and does nothing. A recheck never raises into the server: failures are logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from connector_proxy.settings import namespace_names

logger = logging.getLogger(__name__)
Recheck = Callable[[str, str], Awaitable[object]]  # (namespace, name): reconcile that Connector
ROUTE = "/v1/recheck/{namespace}/{name}"
# A Connector's name: a DNS-1123 subdomain (what the API server accepts for a custom resource).
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_REMEMBERED = 1024  # Connectors whose last recheck time is kept before old entries are dropped


def _malformed() -> web.Response:
    message = f"POST {ROUTE} takes a namespace and a Connector name (lower-case DNS names)."
    return web.json_response({"error": message}, status=404)


class RecheckServer:
    """The endpoint, on its own port. ``namespaces``: those watched (empty: every namespace)."""

    def __init__(
        self,
        namespaces: Sequence[str],
        recheck: Recheck,
        *,
        interval: float = 5.0,
        max_running: int = 32,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        self.metrics = metrics
        self.namespaces = frozenset(namespaces)
        self.interval = interval
        self.max_running = max_running
        self._recheck = recheck
        self._last: dict[tuple[str, str], float] = {}
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/recheck/{path:.*}", self._handle)
        if self.metrics is not None:
            app.router.add_get("/metrics", self._metrics)
        return app

    async def _metrics(self, _: web.Request) -> web.Response:
        """The operator's Prometheus metrics (:mod:`connector_operator.metrics`), open like liveness."""
        assert self.metrics is not None
        body = generate_latest(self.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (``port`` 0: any free port, see :attr:`port`); raises OSError."""
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        assert self._runner is not None, "not started"
        address = self._runner.addresses[0]
        return int(address[1])

    @property
    def running(self) -> int:
        """Rechecks in progress now."""
        return len(self._running)

    async def stop(self) -> None:
        """Stop listening, then cancel the rechecks in progress."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.Response:
        namespace, _, name = request.match_info["path"].partition("/")
        try:
            namespace_names([namespace])
        except ValueError:
            return _malformed()
        if len(name) > 253 or not _NAME.fullmatch(name):
            return _malformed()
        if self.namespaces and namespace not in self.namespaces:
            return web.json_response({"error": f"Namespace {namespace} is not watched by this operator."}, status=404)
        return web.json_response({"recheck": self._schedule(namespace, name)}, status=202)

    def _schedule(self, namespace: str, name: str) -> str:
        """``scheduled``, or ``coalesced`` when the request changes nothing (rate limit, one at a time)."""
        key = (namespace, name)
        now = time.monotonic()
        last = self._last.get(key)
        if key in self._running or (last is not None and now - last < self.interval):
            return "coalesced"
        if len(self._running) >= self.max_running:
            logger.info("recheck not scheduled: too many in progress", extra={"connector": f"{namespace}/{name}"})
            return "coalesced"
        if len(self._last) >= _REMEMBERED:
            self._last = {k: when for k, when in self._last.items() if now - when < self.interval}
        self._last[key] = now
        task = asyncio.get_running_loop().create_task(self._run(namespace, name), name=f"recheck {namespace}/{name}")
        self._running[key] = task
        task.add_done_callback(lambda _: self._running.pop(key, None))
        logger.info("recheck scheduled", extra={"connector": f"{namespace}/{name}"})
        return "scheduled"

    async def _run(self, namespace: str, name: str) -> None:
        try:
            await self._recheck(namespace, name)
        except Exception as error:  # a failed recheck must not reach the server, nor stop the next one
            logger.warning("recheck failed", extra={"connector": f"{namespace}/{name}", "error": type(error).__name__})
