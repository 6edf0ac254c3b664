"""``connector-proxy serve``: a supervisor process over uvicorn worker processes (gunicorn).

The supervisor holds the listening socket and never imports a connector; each worker builds the
app, and with it the registry, from the packages installed when it starts. Reloading is therefore
starting new workers and stopping the old ones gracefully: gunicorn's ``SIGHUP``. Connections
wait in the shared socket's queue while the new workers start, and the old ones finish the
requests they hold, so none is dropped. The supervisor sends itself that ``SIGHUP`` when the
installed connector packages change (:mod:`connector_proxy.serving.package_watch`).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import os
import signal
import site
import socket
import sys
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]
from uvicorn import Server
from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

from connector_proxy.app import create_app
from connector_proxy.event_loop import freeze_startup_objects
from connector_proxy.serving.package_watch import PackageWatch, import_directories, watch_in_thread
from connector_proxy.serving.request_head import bounded_head_protocol
from connector_proxy.serving.source_watch import source_directories, watch_sources_in_thread
from connector_proxy.settings import Settings

logger = logging.getLogger(__name__)

GRACE_SECONDS = 5.0  # beyond the command timeout, for a stopping worker to finish its requests
ACCEPTED_DRAIN_SECONDS = 0.5  # for the requests of connections accepted just before a stop to arrive


class RootLogging(Logger):  # type: ignore[misc]
    """gunicorn's own log lines go through the root logger, formatted like every other line."""

    def setup(self, cfg: Any) -> None:
        for log in (self.error_log, self.access_log):
            log.handlers = []
            log.propagate = True


class DrainingServer(Server):
    """uvicorn's graceful stop closes every connection without a request in progress at once,
    including one accepted an instant before whose request has not been read yet: its client sees
    the connection reset. This server stops accepting first and lets those requests arrive (they
    are then answered, the connection closed after the answer) before that step."""

    def __init__(self, config: Any, *, gc_freeze: bool) -> None:
        super().__init__(config)
        self.gc_freeze = gc_freeze

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Once the app has started (its registry built, its connectors' lifespans entered), freeze
        what start-up built (``CONNECTOR_PROXY_GC_FREEZE``): the worker keeps it for good."""
        await super().startup(sockets)
        if self.gc_freeze and self.started:
            freeze_startup_objects()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await asyncio.sleep(ACCEPTED_DRAIN_SECONDS)
        await super().shutdown(sockets)


class ProxyWorker(UvicornWorker):  # type: ignore[misc]
    """uvicorn in a gunicorn worker, configured as ``serve`` always configured it."""

    GC_FREEZE = True
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "auto",
        "http": "auto",
        "proxy_headers": True,
        "server_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The base hands uvicorn's loggers gunicorn's handlers: send them through the root logger.
        # uvicorn logs every request line when its access logger has handlers anywhere up the tree,
        # so the access logger propagates only when --access-log asks for it.
        access = self.cfg.accesslog is not None
        for name, propagate in (("uvicorn.error", True), ("uvicorn.access", access)):
            uvicorn_log = logging.getLogger(name)
            uvicorn_log.handlers = []
            uvicorn_log.propagate = propagate
        self.config.access_log = access

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(self.config, gc_freeze=self.GC_FREEZE)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    async def callback_notify(self) -> None:
        """The heartbeat; a worker whose supervisor died stops instead of holding the port."""
        if os.getppid() != self.ppid:
            os.kill(os.getpid(), signal.SIGTERM)
        self.notify()


def worker_class(settings: Settings) -> type[ProxyWorker]:
    """:class:`ProxyWorker` whose HTTP protocol bounds request heads by ``settings``."""
    protocol = bounded_head_protocol(settings.max_header_bytes, settings.header_timeout)
    kwargs = {**ProxyWorker.CONFIG_KWARGS, "http": protocol}
    return type("ConfiguredProxyWorker", (ProxyWorker,), {"CONFIG_KWARGS": kwargs, "GC_FREEZE": settings.gc_freeze})


def _refresh_import_state() -> None:
    """A worker forked after a package was installed sees it: new ``.pth`` files are read and the
    import system's directory caches are dropped."""
    for directory in site.getsitepackages():
        site.addsitedir(directory)
    importlib.invalidate_caches()


class ProxyServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, *, host: str, port: int, access_log: bool, reload: bool = False) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.access_log = access_log
        self.watch_sources = reload  # not `reload`: gunicorn's reload() is the SIGHUP handler's
        super().__init__()

    def load_config(self) -> None:
        host = f"[{self.host}]" if ":" in self.host else self.host
        ports = [self.port] if self.settings.metrics_port is None else [self.port, self.settings.metrics_port]
        values: dict[str, Any] = {
            "bind": [f"{host}:{port}" for port in ports],
            "workers": self.settings.workers,
            "worker_class": worker_class(self.settings),
            "logger_class": RootLogging,
            "graceful_timeout": math.ceil(self.settings.command_timeout + GRACE_SECONDS),
            "keepalive": 5,
            "proc_name": "connector-proxy",
            "control_socket_disable": True,  # no runtime control interface: signals only
            "accesslog": "-" if self.access_log else None,
            "when_ready": self._when_ready,
        }
        for name, value in values.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        """In each worker, after the fork: the app from the settings the supervisor read."""
        _refresh_import_state()
        return create_app(self.settings)

    def _when_ready(self, _arbiter: Any) -> None:
        settings = self.settings
        if self.watch_sources and settings.embedded_enabled:
            sources = source_directories(settings.connector_paths)
            watch_sources_in_thread(sources, lambda: os.kill(os.getpid(), signal.SIGHUP))
            logger.info("watching connector sources", extra={"directories": [str(d) for d in sources]})
        if not (settings.embedded_enabled and settings.reload_packages):
            return
        watch = PackageWatch(import_directories(settings.connector_paths))
        watch_in_thread(watch, settings.package_scan_interval, lambda: os.kill(os.getpid(), signal.SIGHUP))
        logger.info(
            "watching connector packages",
            extra={"directories": len(watch.directories), "interval_s": settings.package_scan_interval},
        )


def serve(settings: Settings, *, host: str, port: int, access_log: bool, reload: bool = False) -> None:
    ProxyServer(settings, host=host, port=port, access_log=access_log, reload=reload).run()
