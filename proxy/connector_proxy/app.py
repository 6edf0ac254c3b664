"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from connector_proxy import __version__
from connector_proxy.api_key import ApiKeyMiddleware
from connector_proxy.body_budget import BodyBudget
from connector_proxy.commands import ClassCommand, Command, SdkCommand
from connector_proxy.execution import Runtime
from connector_proxy.fastpath import FastPath
from connector_proxy.isolation import IsolatedPool
from connector_proxy.kubernetes.catalogs import ConnectorCatalogs
from connector_proxy.kubernetes.recheck import RecheckNotifier
from connector_proxy.kubernetes.registry import RemoteRegistryBuilder
from connector_proxy.live_openapi import CommandShape, live_document
from connector_proxy.loading.embedded import EmbeddedConnectors, load_configured
from connector_proxy.logging_setup import install_log_redaction
from connector_proxy.metrics_port import MetricsPort
from connector_proxy.paths import NormalisedPaths
from connector_proxy.registry import Registry
from connector_proxy.routers import auth, catalog, do, health
from connector_proxy.routers.docs import install_docs
from connector_proxy.secret_files import MountedKey
from connector_proxy.settings import Settings
from connector_proxy.state import ProxyState
from connector_proxy.tracing import Tracing

if TYPE_CHECKING:
    from connector_proxy.callers import CallerCheck
    from connector_proxy.kubernetes.watch import ConnectorWatcher, Objects

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Connector proxy for spiff-arena. Point `SPIFFWORKFLOW_BACKEND_CONNECTOR_PROXY_URL` here.

- `GET /v1/commands` lists commands, `GET /v1/auths` authentications;
- `POST /v1/do/{connector}/{command}` runs one (v2 envelope; stable `error_code`s, see docs/errors.md).
"""


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _kubernetes_watcher(settings: Settings, state: ProxyState, refusals: RecheckNotifier) -> ConnectorWatcher:
    """Kubernetes mode: every change to the Connectors rebuilds the registry and swaps it in whole.
    The Kubernetes client is imported only here: embedded mode never loads it."""
    from connector_proxy.kubernetes.watch import ConnectorWatcher, watched_namespaces

    builder = RemoteRegistryBuilder(
        state.forwarder,
        secrets_dir=settings.secrets_dir,
        timeout_margin=settings.forward_timeout_margin,
        refusals=refusals,
        workload_token=MountedKey(settings.workload_token_file) if settings.workload_token_file else None,
    )
    local = state.registry
    revision = local.revision

    catalogs = ConnectorCatalogs()

    def on_change(objects: Objects, config_maps: Objects) -> None:
        nonlocal revision
        revision += 1
        registry = builder.build(
            catalogs.attach(objects, config_maps),
            local_commands=local.commands.values(),
            local_auths=local.auths.values(),
            revision=revision,
        )
        state.swap(registry)
        logger.info(
            "registry updated",
            extra={"revision": revision, "commands": len(registry.commands), "connectors": len(objects)},
        )

    watcher = ConnectorWatcher(watched_namespaces(settings.namespaces, settings.all_namespaces), on_change)
    state.watch_state = watcher.state
    state.metrics.follow_watch(watcher.state)
    return watcher


# FastAPI's own OpenTelemetry spans, metrics and logs (FastAPI 0.142 and later) are off: the proxy's
# tracing and metrics are its own (CONNECTOR_PROXY_TRACING, /metrics), and a global provider set by
# anything else would add a second span to every call. Left on, FastAPI looks up three global
# providers on every request: 5 us each time.
_WITHOUT_FASTAPI_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


class ProxyApp(FastAPI):
    """FastAPI with the fast path and the API key check in front of its whole middleware stack.

    The hot endpoints (``connector_proxy.fastpath``) then cost no more than the ASGI server's own
    work: FastAPI's error, telemetry and body-limit layers took a quarter of a catalog request.
    Everything the fast path does not answer goes through FastAPI as usual.
    """

    def __init__(
        self,
        *,
        proxy_state: ProxyState,
        api_key: str | None,
        max_request_bytes: int,
        budget: BodyBudget | None = None,
        path_prefix: str = "",
        metrics_port: int | None = None,
        callers: CallerCheck | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._proxy_state = proxy_state
        self._api_key = api_key
        self._max_request_bytes = max_request_bytes
        self._budget = budget
        self._path_prefix = path_prefix
        self._metrics_port = metrics_port
        self._callers = callers
        self._live_openapi: tuple[Registry, dict[str, Any]] | None = None

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document with the protocol's operations and one operation per command;
        rebuilt when the registry is replaced."""
        registry = self._proxy_state.registry
        if self._live_openapi is None or self._live_openapi[0] is not registry:
            commands = [command_shape(c) for c in registry.commands.values()]
            document = live_document(super().openapi(), commands, api_key=self._api_key is not None)
            self._live_openapi = (registry, document)
        return self._live_openapi[1]

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = FastPath(
            super().build_middleware_stack(), self._proxy_state, self._max_request_bytes, self._budget
        )
        if self._api_key is not None:  # it guards the fast path too
            app = ApiKeyMiddleware(app, api_key=self._api_key)
        if self._callers is not None:
            from connector_proxy.callers import CallerMiddleware

            app = CallerMiddleware(app, self._callers)
        if self._metrics_port is not None:
            app = MetricsPort(app, self._metrics_port)
        return NormalisedPaths(app, self._path_prefix)  # outermost: every layer sees the same path


def command_shape(command: Command) -> CommandShape:
    """How the live document describes ``command``: SDK commands' types are checked at dispatch;
    a local command refuses unknown parameters unless it takes ``**kwargs``; a forwarded one is
    taken to (what the workload's commands commonly do)."""
    local = command if isinstance(command, SdkCommand | ClassCommand) else None
    closed = local is None or not local.signature.accepts_any_keyword
    return CommandShape(command.catalog_entry(), typed=isinstance(command, SdkCommand), closed=closed)


def _isolation(settings: Settings, registry: Registry) -> IsolatedPool | None:
    """The worker processes for sync community commands, preloading their modules (None with
    ``CONNECTOR_PROXY_ISOLATION=thread``)."""
    if settings.isolation != "process":
        return None
    commands = registry.commands.values()
    modules = sorted({c.cls.__module__ for c in commands if isinstance(c, ClassCommand) and c.runs_in_worker})
    return IsolatedPool(
        settings.isolated_workers,
        backstop=settings.command_timeout + 1,
        log_level=settings.log_level,
        log_format=settings.log_format,
        preload=tuple(modules),
    )


def create_app(settings: Settings | None = None, *, embedded: EmbeddedConnectors | None = None) -> FastAPI:
    """Build the proxy. ``settings`` default to the environment; ``embedded`` to the connector
    packages installed here (when ``settings.embedded_enabled``)."""
    settings = settings or Settings()
    install_log_redaction()
    if embedded is None:
        embedded = (
            load_configured(settings)
            if settings.embedded_enabled
            else EmbeddedConnectors(registry=Registry.empty(), connectors=())
        )
    pool = ThreadPoolExecutor(max_workers=settings.thread_pool_size, thread_name_prefix="connector")
    isolation = _isolation(settings, embedded.registry)
    runtime = Runtime(
        config=MappingProxyType(settings.connector_config()),
        pool=pool,
        timeout=settings.command_timeout,
        isolation=isolation,
    )
    state = ProxyState(registry=embedded.registry, runtime=runtime, tracing=Tracing.configured(settings.tracing))
    refusals = RecheckNotifier(settings.operator_url, state.metrics.forward_refused, lambda: state.forwarder.client)
    watcher = _kubernetes_watcher(settings, state, refusals) if settings.kubernetes else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.callback(pool.shutdown, wait=False, cancel_futures=True)
            stack.callback(state.tracing.shutdown)  # last: the spans of the calls before it are exported
            if isolation is not None:
                stack.callback(isolation.close)
                if isolation.preload:
                    isolation.start()
            stack.push_async_callback(state.forwarder.aclose)
            stack.push_async_callback(refusals.aclose)  # before the client it uses closes
            for connector in embedded.connectors:
                if connector.lifespan is not None:
                    await stack.enter_async_context(connector.lifespan())
            if watcher is not None:
                task = asyncio.create_task(watcher.run(), name="connector-watch")
                stack.push_async_callback(_cancel, task)
            monitor = asyncio.create_task(state.metrics.loop_lag.run(), name="loop-lag")
            stack.push_async_callback(_cancel, monitor)
            yield

    app = ProxyApp(
        proxy_state=state,
        api_key=settings.api_key.get_secret_value() if settings.api_key is not None else None,
        max_request_bytes=settings.max_request_bytes,
        budget=BodyBudget(settings.max_body_memory_bytes, settings.body_wait_seconds),
        path_prefix=settings.path_prefix,
        metrics_port=settings.metrics_port,
        callers=_caller_check(settings),
        title="spiff-arena connector proxy",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # routers.docs serves both pages with local assets
        redoc_url=None,
        **_WITHOUT_FASTAPI_TELEMETRY,
    )
    app.state.proxy = state
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(catalog.router)
    app.include_router(do.router)
    app.include_router(auth.router)
    install_docs(app)
    return app


def _caller_check(settings: Settings) -> CallerCheck | None:
    """A connector workload's check of its callers. Imported only then: its JOSE library is a tenth
    of an embedded proxy's start-up."""
    if settings.callers_file is None:
        return None
    from connector_proxy.callers import CallerCheck

    return CallerCheck(settings.callers_file)
