"""Commands served by a connector workload (Kubernetes mode): forwarded over one pooled client."""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from connector_proxy.call_context import ERROR_CODE_HEADER, OUTCOME_HEADER, REQUEST_ID_HEADER, current_call
from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.execution import Runtime
from connector_proxy.kubernetes.recheck import REFUSED, RecheckNotifier
from connector_proxy.outcome import COMMAND_ERROR, DISPATCH_ERROR, JSON, SAFE_CODE, Outcome
from connector_proxy.secret_files import MountedKey, credential_headers
from connector_proxy.tracing import outgoing
from spiff_connector_sdk.proxies import environment_mounts
from spiff_connector_sdk.transport import pooled_transport

logger = logging.getLogger(__name__)
# A forward whose bytes a workload has not acknowledged within this many seconds fails (503
# connector_unavailable) instead of hanging to the Connector's deadline: the pod behind a pooled
# connection was killed. A live workload's kernel acknowledges at once, however long the command runs.
UNACKED_TIMEOUT = 5.0
USER_AGENT = "spiff-connector-proxy"  # on every request of the forwarder's client
_FORWARDED_HEADERS = {"content-type": "application/json"}


def no_cookie_jar() -> http.cookiejar.CookieJar:
    """A jar that neither keeps nor sends cookies: a client shared by every caller must never carry
    one caller's cookie (set by a workload's answer) into another caller's request."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


@dataclass(eq=False)
class RemoteConnector:
    """One Connector's workload: where it is, and the limits its spec sets.

    The semaphore bounds the commands in flight to it; a slow or dead workload can only ever
    hold its own slots, never the event loop or another connector's. ``federated``: a url source
    (an existing connector proxy), whose ``apiKeySecretRef`` names ``secret``. ``token``: the
    proxy's ServiceAccount token for workloads (pip and image sources), sent as a bearer token.
    """

    key: str
    endpoint: str
    timeout: float
    concurrency: int
    api_key: MountedKey | None = field(default=None, repr=False)
    federated: bool = False
    secret: str | None = None
    token: MountedKey | None = field(default=None, repr=False)
    slots: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)

    @property
    def identity(self) -> tuple[str, str, float, int, Path | None, bool, str | None, Path | None]:
        """What a registry rebuild keeps this workload's connector (and its slots in flight) by."""
        path = self.api_key.path if self.api_key else None
        token = self.token.path if self.token else None
        return (self.key, self.endpoint, self.timeout, self.concurrency, path, self.federated, self.secret, token)

    def headers(self) -> dict[str, str]:
        headers = dict(_FORWARDED_HEADERS)
        headers.update(credential_headers(self.api_key, self.token))
        return headers


class Forwarder:
    """The proxy's one pooled HTTP client for connector workloads (created on the serving loop).

    httpx on aiohttp's connections (:mod:`spiff_connector_sdk.transport`): about half the CPU
    per forwarded call of httpx's own HTTP stack. Calls that an environment proxy setting
    (``HTTPS_PROXY``, ``NO_PROXY``, ...) routes through a proxy use httpx's own stack."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30)
            # No client-wide timeout: every forward runs under its Connector's own deadline.
            self._client = httpx.AsyncClient(
                transport=pooled_transport(limits=limits, unacked_timeout=UNACKED_TIMEOUT),
                mounts=environment_mounts(limits=limits),
                timeout=None,  # noqa: S113
                follow_redirects=False,
                cookies=no_cookie_jar(),
                headers={"user-agent": USER_AGENT},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass(frozen=True)
class RemoteCommand:
    """A command id routed to a workload; its catalog entry is what the workload reported."""

    id: str
    connector: str
    remote: RemoteConnector
    entry: dict[str, Any] = field(repr=False)
    forwarder: Forwarder = field(repr=False)
    refusals: RecheckNotifier | None = field(default=None, repr=False)  # told of a url source's 401/403

    @property
    def source(self) -> str:
        return f"Connector {self.remote.key} at {self.remote.endpoint}"

    def catalog_entry(self) -> dict[str, Any]:
        return self.entry

    async def run(self, body: bytes, runtime: Runtime) -> Outcome:
        remote = self.remote
        url = f"{remote.endpoint}/v1/do/{self.id}"
        try:
            async with asyncio.timeout(remote.timeout):
                async with remote.slots:
                    response = await self.forwarder.client.post(url, content=body, headers=_with_call(remote.headers()))
        except TimeoutError:
            logger.warning("connector timed out", extra={"command": self.id, "connector": remote.key})
            raise DispatchError(
                504,
                ErrorCode.CONNECTOR_TIMEOUT,
                f"Connector {remote.key} did not answer {self.id} within {remote.timeout:g} seconds.",
            ) from None
        except httpx.HTTPError as error:
            logger.warning(
                "connector unreachable",
                extra={"command": self.id, "connector": remote.key, "error": type(error).__name__},
            )
            raise DispatchError(
                503, ErrorCode.CONNECTOR_UNAVAILABLE, f"Connector {remote.key} cannot be reached for {self.id}."
            ) from None
        if response.status_code in REFUSED and remote.federated and self.refusals is not None:
            self.refusals.refused(
                connector=remote.key,
                command=self.id,
                status=response.status_code,
                endpoint=remote.endpoint,
                secret=remote.secret,
            )
        return _forwarded_outcome(response)


def _with_call(headers: dict[str, str]) -> dict[str, str]:
    """The call's request id goes on to the workload, whose log line of the call then carries it, and
    so does the trace context."""
    call = current_call.get()
    if call is not None:
        headers[REQUEST_ID_HEADER] = call.request_id
    return outgoing(headers)  # and the trace context


def _forwarded_outcome(response: httpx.Response) -> Outcome:
    """The workload's answer, passed on as it is. How it went: from the workload's own outcome
    headers (this project's proxies send them on failures), else from the status alone (another
    proxy: a failed command's answer is a 200 then), with the body's error_code when it failed."""
    status = response.status_code
    media_type = response.headers.get("content-type", JSON)
    kind = response.headers.get(OUTCOME_HEADER)
    code = response.headers.get(ERROR_CODE_HEADER)
    if kind in (COMMAND_ERROR, DISPATCH_ERROR) and code is not None and SAFE_CODE.match(code):
        return Outcome(status, response.content, media_type, error_code=code, kind=kind)
    if status >= 400:
        return Outcome(status, response.content, media_type, error_code=_error_code(response.content),
                       kind=DISPATCH_ERROR)  # fmt: skip
    return Outcome(status, response.content, media_type)


def _error_code(body: bytes) -> str:
    """The error_code of a failed workload answer (for metrics only), ``unknown`` if unreadable."""
    try:
        code = orjson.loads(body)["error"]["error_code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "unknown"
    return code if isinstance(code, str) and len(code) <= 100 else "unknown"
