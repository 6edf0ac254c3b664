"""Commands served by a connector workload (Kubernetes mode): forwarded over one pooled client."""

from __future__ import annotations

import asyncio
import functools
import http.cookiejar
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from yarl import URL

from connector_proxy.call_context import ERROR_CODE_HEADER, OUTCOME_HEADER, REQUEST_ID_HEADER, current_call
from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.execution import Runtime
from connector_proxy.kubernetes.recheck import REFUSED, RecheckNotifier
from connector_proxy.outcome import COMMAND_ERROR, DISPATCH_ERROR, JSON, SAFE_CODE, Outcome
from connector_proxy.secret_files import MountedKey, credential_headers
from spiff_connector_sdk.proxies import ProxyRoutes, environment_mounts
from spiff_connector_sdk.tracing import trace_headers
from spiff_connector_sdk.transport import pooled_transport, tls_context, unacked_socket_factory

logger = logging.getLogger(__name__)
# A forward whose bytes a workload has not acknowledged within this many seconds fails (503
# connector_unavailable) instead of hanging to the Connector's deadline: the pod behind a pooled
# connection was killed. A live workload's kernel acknowledges at once, however long the command runs.
UNACKED_TIMEOUT = 5.0
USER_AGENT = "spiff-connector-proxy"  # on every request of the forwarder's clients
MAX_CONNECTIONS = 1000  # to all workloads together; each Connector's own bound is its concurrency
KEEPALIVE_EXPIRY = 30.0
_FORWARDED_HEADERS = {"content-type": "application/json"}
_FAILURES = (aiohttp.ClientError, OSError, ValueError)  # ValueError: aiohttp's refusal of a bad URL or header


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


@dataclass(frozen=True)
class Forwarded:
    """A workload's whole answer to a forwarded call."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Forwarder:
    """The proxy's pooled HTTP clients for connector workloads (created on the serving loop).

    Commands are forwarded on one ``aiohttp.ClientSession`` (:meth:`forward`): bytes in, bytes
    out, with no second HTTP library above it. That is the hot path of Kubernetes mode, and httpx's
    API on aiohttp's connections cost about twice its CPU per call. Each endpoint's environment
    proxy (``HTTPS_PROXY``, ``NO_PROXY``, ..., :func:`spiff_connector_sdk.proxies.proxy_for`) is
    resolved once. The rarer control calls (OAuth forwards, rechecks to the operator) use
    :attr:`client`, an ``httpx.AsyncClient`` with the same settings.

    Neither keeps cookies (one caller's cookie must never reach another caller's request), follows
    redirects or decompresses (nothing asks a workload to compress); neither has a timeout of its
    own: every forward runs under its Connector's deadline, and fails early when a killed pod
    leaves its bytes unacknowledged (:data:`UNACKED_TIMEOUT`)."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._proxies = ProxyRoutes()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=200, keepalive_expiry=KEEPALIVE_EXPIRY
            )
            self._client = httpx.AsyncClient(
                transport=pooled_transport(limits=limits, unacked_timeout=UNACKED_TIMEOUT),
                mounts=environment_mounts(limits=limits),
                timeout=None,  # noqa: S113
                follow_redirects=False,
                cookies=no_cookie_jar(),
                headers={"user-agent": USER_AGENT},
            )
        return self._client

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS,
                keepalive_timeout=KEEPALIVE_EXPIRY,
                ssl=tls_context(),  # as the proxy's other clients verify a url source's certificate
                socket_factory=unacked_socket_factory(UNACKED_TIMEOUT),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"user-agent": USER_AGENT},
                skip_auto_headers=("Accept-Encoding",),
                auto_decompress=False,
                trust_env=False,  # the environment's proxies: proxy_for, the same rules as httpx's
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    def proxy(self, endpoint: str) -> str | None:
        """The environment proxy for a workload ``endpoint`` (None: reached directly), looked up once."""
        return self._proxies.get(endpoint, endpoint)

    async def forward(self, endpoint: str, path: str, body: bytes, headers: Mapping[str, str]) -> Forwarded:
        """POST ``body`` to ``endpoint + path`` and read the whole answer. Raises what aiohttp raises
        (:data:`_FAILURES`) when no answer came; the caller's deadline bounds the whole call."""
        url = URL(endpoint + path, encoded=True)  # ``path`` is percent-encoded already: sent as it is
        async with self.session.post(
            url, data=body, headers=headers, proxy=self.proxy(endpoint), allow_redirects=False
        ) as response:
            return Forwarded(response.status, response.headers, await response.read())

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._session is not None:
            await self._session.close()
            self._session = None


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

    @functools.cached_property
    def path(self) -> str:
        """The workload's path for this command, percent-encoded once: an id another proxy reports
        may hold a space, a ``?`` or a non-ASCII letter (the forward sends the path as it is)."""
        return "/v1/do/" + urllib.parse.quote(self.id, safe="/")

    async def run(self, body: bytes, runtime: Runtime) -> Outcome:
        remote = self.remote
        try:
            async with asyncio.timeout(remote.timeout) as deadline:
                async with remote.slots:
                    response = await self.forwarder.forward(
                        remote.endpoint, self.path, body, _with_call(remote.headers())
                    )
        except TimeoutError as error:
            if not deadline.expired():  # a socket-level timeout of aiohttp's (a TimeoutError too)
                raise self._unreachable(error) from None
            logger.warning("connector timed out", extra={"command": self.id, "connector": remote.key})
            raise DispatchError(
                504,
                ErrorCode.CONNECTOR_TIMEOUT,
                f"Connector {remote.key} did not answer {self.id} within {remote.timeout:g} seconds.",
            ) from None
        except _FAILURES as error:
            raise self._unreachable(error) from None
        if response.status in REFUSED and remote.federated and self.refusals is not None:
            self.refusals.refused(
                connector=remote.key,
                command=self.id,
                status=response.status,
                endpoint=remote.endpoint,
                secret=remote.secret,
            )
        return _forwarded_outcome(response)

    def _unreachable(self, error: BaseException) -> DispatchError:
        remote = self.remote
        logger.warning(
            "connector unreachable", extra={"command": self.id, "connector": remote.key, "error": type(error).__name__}
        )
        return DispatchError(
            503, ErrorCode.CONNECTOR_UNAVAILABLE, f"Connector {remote.key} cannot be reached for {self.id}."
        )


def _with_call(headers: dict[str, str]) -> dict[str, str]:
    """The call's request id goes on to the workload, whose log line of the call then carries it, and
    so does the trace context."""
    call = current_call.get()
    if call is not None:
        headers[REQUEST_ID_HEADER] = call.request_id
    headers.update(trace_headers())  # and the trace context
    return headers


def _forwarded_outcome(response: Forwarded) -> Outcome:
    """The workload's answer, passed on as it is. How it went: from the workload's own outcome
    headers (this project's proxies send them on failures), else from the status alone (another
    proxy: a failed command's answer is a 200 then), with the body's error_code when it failed."""
    status = response.status
    media_type = response.headers.get("content-type", JSON)
    kind = response.headers.get(OUTCOME_HEADER)
    code = response.headers.get(ERROR_CODE_HEADER)
    if kind in (COMMAND_ERROR, DISPATCH_ERROR) and code is not None and SAFE_CODE.match(code):
        return Outcome(status, response.body, media_type, error_code=code, kind=kind)
    if status >= 400:
        return Outcome(status, response.body, media_type, error_code=_error_code(response.body), kind=DISPATCH_ERROR)
    return Outcome(status, response.body, media_type)


def _error_code(body: bytes) -> str:
    """The error_code of a failed workload answer (for metrics only), ``unknown`` if unreadable."""
    try:
        code = orjson.loads(body)["error"]["error_code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "unknown"
    return code if isinstance(code, str) and len(code) <= 100 else "unknown"
