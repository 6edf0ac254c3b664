"""Telling the operator that a url-sourced Connector's proxy refused a forwarded call (401 or 403).

The operator learns that a federated proxy no longer takes the key only when it discovers that
Connector again (every ``CONNECTOR_OPERATOR_DISCOVERY_INTERVAL`` seconds, or when the Secret changes).
So when a forwarded ``/v1/do`` comes back 401 or 403, the proxy logs a warning (the Connector, the
command, the endpoint and the Secret's name, never the key), counts it in
``connector_proxy_forward_refused_total``, and, with ``CONNECTOR_PROXY_OPERATOR_URL`` set, asks the
operator to re-discover that one Connector now: ``POST <operator>/v1/recheck/<namespace>/<name>``.
The operator's discovery reads the key from the Secret through the API; when it is refused too, the
Connector shows ``Ready=False`` reason ``Unauthorized``. The proxy keeps its read-only access: it
reads no Secret and writes no status, it only asks.

The request is fire and forget: a task off the request path (the caller's answer is passed through
unchanged and never waits for it), at most one per Connector every ``interval`` seconds and
``max_pending`` in flight in all, each under a deadline of ``timeout`` seconds. A failure is logged
at info and otherwise ignored: the periodic re-discovery remains.

The client is the forwarder's pooled one (:class:`connector_proxy.kubernetes.forwarding.Forwarder`,
handed in as a callable because it is created on first use, on the serving loop): one pool and one
lifecycle (the lifespan closes it), no cookie jar, no redirects. The requests are rare (bounded per
Connector) and tiny, so they cannot crowd out the workloads' connections; that client has no
timeout of its own, and the per-request deadline gives them their short one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
from prometheus_client import Counter

logger = logging.getLogger(__name__)
REFUSED = frozenset({401, 403})
_REMEMBERED = 1024  # Connectors whose last request time is kept before old entries are dropped


class RecheckNotifier:
    """What the proxy does with a refused forward: log, count, and (rate-limited) ask the operator."""

    def __init__(
        self,
        operator_url: str | None,
        counter: Counter,
        client: Callable[[], httpx.AsyncClient],
        *,
        interval: float = 10.0,
        timeout: float = 2.0,
        max_pending: int = 16,
    ) -> None:
        self.operator_url = operator_url.rstrip("/") if operator_url else None
        self.interval = interval
        self.timeout = timeout
        self.max_pending = max_pending
        self._counter = counter
        self._client = client
        self._last: dict[str, float] = {}
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Requests to the operator in flight now."""
        return len(self._pending)

    def refused(self, *, connector: str, command: str, status: int, endpoint: str, secret: str | None) -> None:
        """A forward of ``command`` to Connector ``connector`` (``<namespace>/<name>``) was answered
        ``status``. Never blocks and never raises: called on the request path, on the serving loop."""
        logger.warning(
            "forwarded call refused by the Connector's proxy: its API key may have changed",
            extra={
                "connector": connector,
                "command": command,
                "status": status,
                "endpoint": endpoint,
                "secret": secret,
            },
        )
        self._counter.labels(connector, str(status)).inc()
        if self.operator_url is None:
            return
        now = time.monotonic()
        last = self._last.get(connector)
        if last is not None and now - last < self.interval:
            return  # asked recently: the operator is on it
        if len(self._pending) >= self.max_pending:
            logger.info("operator recheck not requested: too many requests in flight", extra={"connector": connector})
            return
        self._remember(connector, now)
        task = asyncio.get_running_loop().create_task(self._request(connector), name=f"recheck {connector}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _remember(self, connector: str, now: float) -> None:
        if len(self._last) >= _REMEMBERED:
            self._last = {key: when for key, when in self._last.items() if now - when < self.interval}
        self._last[connector] = now

    async def _request(self, connector: str) -> None:
        namespace, _, name = connector.partition("/")
        url = f"{self.operator_url}/v1/recheck/{quote(namespace, safe='')}/{quote(name, safe='')}"
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client().post(url)
        except TimeoutError:
            logger.info("operator recheck not delivered", extra={"connector": connector, "error": "TimeoutError"})
            return
        except httpx.HTTPError as error:
            logger.info("operator recheck not delivered", extra={"connector": connector, "error": type(error).__name__})
            return
        if response.status_code == 202:
            logger.info("operator recheck requested", extra={"connector": connector})
        else:
            logger.info("operator recheck refused", extra={"connector": connector, "status": response.status_code})

    async def aclose(self) -> None:
        """Cancel the requests in flight (at shutdown, before the client closes)."""
        tasks = list(self._pending)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
