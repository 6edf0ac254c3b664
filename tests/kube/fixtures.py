"""Pytest fixtures and helpers to run Kubernetes code against the in-memory emulator (no cluster).

Wire it from a conftest with ``pytest_plugins = ["kube.fixtures"]`` (root conftest) or
``from kube.fixtures import *``; both import this module before any test module imports ``kubernetes``.

KUBECONFIG (pitfall 2 in ``tests/kube/README.md``): ``kubernetes`` and ``kubernetes_asyncio`` read
``$KUBECONFIG`` once, at import time. So, on import, this module points ``$KUBECONFIG`` at a per-process
file (:data:`KUBECONFIG_PATH`) and, if either client was imported earlier anyway, also rebinds its
module-level default path; the ``kube_emulator`` fixture then writes that file once its port is known, and
removes it afterwards. Code under test that calls ``load_kube_config()`` without arguments thus reaches the
emulator (and never a real cluster). The helpers here do not depend on that environment at all: tests get an
explicit ``kubeconfig_path`` for the clients, and kopf authenticates through an explicit ``@kopf.on.login``
handler that :func:`run_operator` adds to the operator's own registry (kopf ignores its kubeconfig-reading
fallback logins when a login handler exists).

Typical use::

    async def test_operator(kube_emulator: KubeEmulator) -> None:
        await kube_emulator.apply_crd(CRD_PATH)
        async with run_operator(kube_emulator, modules=["kube.sample_operator"]):
            await kube_emulator.create(widget)
            await eventually(lambda: kube_emulator.get("example.test/v1", "Widget", "default", "w1"))

    async def test_proxy(kube_emulator: KubeEmulator) -> None:  # a kubernetes_asyncio client in the test loop
        api = await kubernetes_asyncio.config.new_client_from_config(config_file=str(kube_emulator.kubeconfig_path))

The emulator serves in the test's event loop: a *sync* client (``kubernetes``) must be called through
``await asyncio.to_thread(...)``, or it blocks the loop that should answer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import kmock
import pytest
import pytest_asyncio
import yaml

from kube.emulator import KubernetesEmulator

if TYPE_CHECKING:
    import kopf

JSON = dict[str, Any]
T = TypeVar("T")
KUBECONFIG_PATH = Path(tempfile.gettempdir()) / f"kube-emulator-{os.getpid()}.kubeconfig"
CONTEXT = "kmock"
DEFAULT_TIMEOUT = 10.0


def point_kubeconfig_env(path: Path = KUBECONFIG_PATH) -> Path:
    """Make ``$KUBECONFIG`` (and already-imported clients' default path) name ``path``. See the module doc."""
    os.environ["KUBECONFIG"] = str(path)
    for name in ("kubernetes.config.kube_config", "kubernetes_asyncio.config.kube_config"):
        module = sys.modules.get(name)
        if module is not None:
            module.KUBE_CONFIG_DEFAULT_LOCATION = str(path)  # type: ignore[attr-defined]
    return path


point_kubeconfig_env()  # at import: before kopf/kubernetes are imported by the test modules


def pytest_configure(config: pytest.Config) -> None:
    point_kubeconfig_env()  # again, when loaded as a plugin (harmless)


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig with one context, ``kmock``, pointing at ``server`` (plain HTTP, a dummy token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": {"token": "kmock"}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}],
        "current-context": CONTEXT,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


async def eventually(probe: Callable[[], Awaitable[T | None] | T | None], within: float = DEFAULT_TIMEOUT) -> T:
    """Poll ``probe`` (sync or async) until it returns something truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = probe()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not true within {within}s: {probe!r}")
        await asyncio.sleep(0.02)


class KubeApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class KubeEmulator:
    """A running emulator: its URL, a kubeconfig for it, and thin async helpers that go over HTTP."""

    emulator: KubernetesEmulator  # the kmock handler: .objects, .resources, kmock's DSL, .compact()...
    server: kmock.Server
    kubeconfig_path: Path

    @property
    def url(self) -> str:
        return str(self.server.url).rstrip("/")

    def path(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The URL path of a resource, from ``apps/v1`` + ``Deployment`` (or ``deployments``, a short name)."""
        res = self.emulator.find_resource(api_version, kind)
        parts = ["/api" if not res.group else "/apis", api_version]
        parts += ["namespaces", namespace] if namespace else []
        parts += [str(res.plural)] + ([name] if name else []) + ([subresource] if subresource else [])
        return "/".join(parts)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type}
        async with self.server.client.request(method, path, data=data, headers=headers, params=params) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                raise KubeApiError(response.status, payload)
            return payload

    async def create(self, obj: JSON) -> JSON:
        meta = obj.get("metadata", {})
        path = self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return await self.request("POST", path, obj)  # type: ignore[no-any-return]

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None:
        """The object, or None if it does not exist."""
        try:
            return await self.request("GET", self.path(api_version, kind, namespace, name))  # type: ignore[no-any-return]
        except KubeApiError as e:
            if e.status == 404:
                return None
            raise

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[JSON]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", self.path(api_version, kind, namespace), params=params)
        return result["items"]  # type: ignore[no-any-return]

    async def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: JSON,
        *,
        subresource: str | None = None,
    ) -> JSON:
        """A JSON merge-patch (``None`` deletes a key)."""
        path = self.path(api_version, kind, namespace, name, subresource)
        return await self.request("PATCH", path, patch, content_type="application/merge-patch+json")  # type: ignore[no-any-return]

    async def patch_status(self, api_version: str, kind: str, namespace: str | None, name: str, status: JSON) -> JSON:
        """Set status fields through ``/status`` (e.g. to simulate a Deployment becoming available)."""
        return await self.patch(api_version, kind, namespace, name, {"status": status}, subresource="status")

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON:
        return await self.request("DELETE", self.path(api_version, kind, namespace, name))  # type: ignore[no-any-return]

    async def apply_crd(self, crd: JSON | str | Path) -> JSON:
        """Create (or replace) a CRD from a dict or a YAML file, so that its resource is served at once."""
        text = "" if isinstance(crd, dict) else await asyncio.to_thread(Path(crd).read_text, encoding="utf-8")
        doc: JSON = crd if isinstance(crd, dict) else yaml.safe_load(text)
        existing = await self.get(doc["apiVersion"], doc["kind"], None, doc["metadata"]["name"])
        if existing is None:
            return await self.create(doc)
        path = self.path(doc["apiVersion"], doc["kind"], None, doc["metadata"]["name"])
        return await self.request("PUT", path, doc)  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def start_kube_emulator(kubeconfig_path: Path | None = None) -> AsyncIterator[KubeEmulator]:
    """Serve a fresh emulator on 127.0.0.1 (a free port) in the running loop; write a kubeconfig for it."""
    emulator = KubernetesEmulator()
    path = kubeconfig_path or Path(tempfile.mkdtemp(prefix="kube-emulator-")) / "kubeconfig"
    async with emulator, kmock.Server(emulator, host="127.0.0.1") as server:
        handle = KubeEmulator(emulator=emulator, server=server, kubeconfig_path=path)
        write_kubeconfig(path, handle.url)
        try:
            yield handle
        finally:
            emulator.close_watches()  # or the server waits for open watch streams on exit
            path.unlink(missing_ok=True)


@pytest_asyncio.fixture
async def kube_emulator() -> AsyncIterator[KubeEmulator]:
    """A fresh emulator per test; ``$KUBECONFIG`` names its kubeconfig while the test runs."""
    async with start_kube_emulator(point_kubeconfig_env()) as handle:
        yield handle


class OperatorThread:
    """A kopf operator in its own thread and event loop (pitfall 1: kopf cancels the tasks of its loop).

    Handlers come from ``paths`` (files, executed afresh), ``modules`` (imported, or reloaded so that their
    decorators register again), or a ready ``registry``. kopf runs standalone (no peering), cluster-wide
    unless ``namespaces`` are given, logged in to ``server`` by an explicit login handler.
    """

    def __init__(
        self,
        server: str,
        *,
        paths: Iterable[str | Path] = (),
        modules: Iterable[str] = (),
        registry: kopf.OperatorRegistry | None = None,
        settings: kopf.OperatorSettings | None = None,
        namespaces: Sequence[str] = (),
        memo: object | None = None,
    ) -> None:
        import kopf

        self.server = server
        self.registry = registry if registry is not None else kopf.OperatorRegistry()
        self.settings = settings if settings is not None else kopf.OperatorSettings()
        self.namespaces = list(namespaces)
        self.memo = memo
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="kopf-operator", daemon=True)
        self._load(paths, modules)

        @kopf.on.login(registry=self.registry)
        def login_to_emulator(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=self.server, token="kmock", priority=1_000_000)

    def _load(self, paths: Iterable[str | Path], modules: Iterable[str]) -> None:
        import kopf

        previous = kopf.get_default_registry()
        kopf.set_default_registry(self.registry)  # the handlers' decorators register into our registry
        try:
            for index, path in enumerate(paths):
                spec = importlib.util.spec_from_file_location(f"__kopf_handlers_{index}__", path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            for name in modules:
                if name in sys.modules:
                    importlib.reload(sys.modules[name])
                else:
                    importlib.import_module(name)
        finally:
            kopf.set_default_registry(previous)

    def _run(self) -> None:
        import kopf

        try:
            asyncio.run(
                kopf.operator(
                    registry=self.registry,
                    settings=self.settings,
                    standalone=True,
                    clusterwide=not self.namespaces,
                    namespaces=self.namespaces,
                    stop_flag=self.stop_flag,
                    ready_flag=self.ready_flag,
                    memo=self.memo,
                )
            )
        except BaseException as e:
            self.error = e

    async def start(self, within: float = DEFAULT_TIMEOUT) -> None:
        """Start the thread; wait until kopf is ready (its startup handlers ran), or fail."""
        self.thread.start()
        await eventually(lambda: self.ready_flag.is_set() or not self.thread.is_alive(), within)
        if not self.ready_flag.is_set():
            raise RuntimeError("the operator exited before it was ready") from self.error

    async def stop(self, within: float = DEFAULT_TIMEOUT) -> None:
        """Raise the stop flag; wait (the emulator keeps serving) for the thread to end; re-raise its error."""
        self.stop_flag.set()
        await eventually(lambda: not self.thread.is_alive(), within)
        if self.error is not None:
            raise RuntimeError("the operator failed") from self.error


@contextlib.asynccontextmanager
async def run_operator(
    emulator: KubeEmulator | str,
    *,
    paths: Iterable[str | Path] = (),
    modules: Iterable[str] = (),
    registry: kopf.OperatorRegistry | None = None,
    settings: kopf.OperatorSettings | None = None,
    namespaces: Sequence[str] = (),
    memo: object | None = None,
    within: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[OperatorThread]:
    """``async with run_operator(kube_emulator, modules=["kube.sample_operator"]) as operator: ...``"""
    url = emulator.url if isinstance(emulator, KubeEmulator) else emulator
    operator = OperatorThread(
        url, paths=paths, modules=modules, registry=registry, settings=settings, namespaces=namespaces, memo=memo
    )
    try:
        await operator.start(within)
    except BaseException:
        operator.stop_flag.set()
        raise
    try:
        yield operator
    finally:
        await operator.stop(within)


__all__ = [
    "KUBECONFIG_PATH",
    "KubeApiError",
    "KubeEmulator",
    "OperatorThread",
    "eventually",
    "kube_emulator",
    "point_kubeconfig_env",
    "run_operator",
    "start_kube_emulator",
    "write_kubeconfig",
]
