"""Fixtures of the opt-in real-cluster suite (``pytest -m cluster``); see ``support.py``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml
from e2e.cluster.support import CRD, ClusterApiError, Operators, RealCluster, real_kubeconfig, require_local_context
from kube.fixtures import point_kubeconfig_env


@pytest.fixture
async def kube() -> AsyncIterator[RealCluster]:
    """A fresh namespace in the local cluster (CRD applied), deleted after the test. While it runs,
    ``$KUBECONFIG`` names the real cluster's kubeconfig (the operator logs in with it)."""
    kubeconfig = real_kubeconfig()
    require_local_context(kubeconfig)
    from kubernetes_asyncio import client, config

    point_kubeconfig_env(Path(kubeconfig))
    await config.load_kube_config(config_file=kubeconfig)
    api = client.ApiClient()
    cluster = RealCluster(api, f"connector-e2e-{uuid.uuid4().hex[:8]}")
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    try:
        await cluster.create(crd)
    except ClusterApiError as error:
        if error.status != 409:
            raise
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cluster.namespace}})
    try:
        yield cluster
    finally:
        await cluster.delete("v1", "Namespace", None, cluster.namespace)
        await api.close()
        point_kubeconfig_env()  # back to the emulator's, as for every other test


@pytest.fixture
async def operators(kube: RealCluster) -> AsyncIterator[Operators]:
    running = Operators(kube.namespace)
    try:
        yield running
    finally:
        await running.stop_all()


@pytest.fixture
def runtimes() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack
