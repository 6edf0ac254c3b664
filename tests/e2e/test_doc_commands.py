"""The Kubernetes commands of docs/operator.md and of the chart README, run as written against the
real API server.

Each runs in ``bash`` from a directory holding the repository's ``charts`` and ``examples``, with
the control plane's ``kubectl`` and the tests' ``helm`` first on ``PATH`` and a ``$KUBECONFIG``
whose context points at a fresh namespace (what a reader's current namespace is); the chart
README's namespace ``spiff`` is that namespace. No operator runs: the example's endpoint is a
cluster DNS name this machine must not look up, and what is checked here is that the commands,
paths, names, columns and outputs the pages give are right (the conditions themselves are
asserted in ``test_operator.py``, pods in ``tests/e2e/node``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from chart.helm import HELM_4, helm_for
from e2e.conftest import Kubectl
from e2e.realkube import Operators, RealCluster
from kube.connectors import catalog_of, connector, runtime_app, wait_condition

from proxytest.doc_shell import ROOT, commands, shell_blocks
from proxytest.servers import serve_in_thread


@dataclass(frozen=True)
class Shell:
    """``bash -c`` as a reader in ``root`` (the repository's charts and examples), with ``env``."""

    root: Path
    env: dict[str, str]

    def __call__(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=180
        )


README = "charts/connector-proxy/README.md"
CHART_NAMESPACE = re.compile(r"(?<![\w-])spiff(?![\w-])")  # the README's namespace, not spiff-arena


@pytest.fixture
def shell(kube: RealCluster, kubectl: Kubectl, tmp_path: Path) -> Shell:
    """``bash -c`` as a reader at the repository root, in the test's namespace."""
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copy(kubectl.kubeconfig, kubeconfig)
    Kubectl(kubectl.binary, kubeconfig)("config", "set-context", "--current", f"--namespace={kube.namespace}")
    helm = helm_for(HELM_4)
    root = tmp_path / "repository"
    root.mkdir()
    for name in ("charts", "examples"):
        (root / name).symlink_to(ROOT / name)
    path = os.pathsep.join([str(kubectl.binary.parent), str(helm.binary.parent), "/usr/bin", "/bin"])
    return Shell(root, {**helm.env(), "KUBECONFIG": str(kubeconfig), "PATH": path})


def _in(namespace: str, command: str) -> str:
    return CHART_NAMESPACE.sub(namespace, command)


def _ok(shell: Shell, command: str) -> str:
    result = shell(command)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


async def test_the_operator_page_commands_work(kube: RealCluster, shell: Shell) -> None:
    [block] = [b for b in shell_blocks("docs/operator.md") if "kubectl apply" in b]
    steps = commands(block)
    assert [step.split()[:2] for step in steps] == [["kubectl", "apply"]] * 2 + [
        ["kubectl", "get"],
        ["kubectl", "describe"],
    ]
    crd, example, listed, described = [_ok(shell, step) for step in steps]
    assert "customresourcedefinition.apiextensions.k8s.io/connectors.connectors.spiffworkflow.org" in crd
    assert "connector.connectors.spiffworkflow.org/legacy-proxy created" in example
    header = listed.splitlines()[0].split()
    # The columns the page's comment names, in its order.
    assert header == ["NAME", "READY", "REASON", "SOURCE", "COMMANDS", "AGE"]
    assert listed.splitlines()[1].split()[0] == "legacy-proxy"
    assert "Name:         legacy-proxy" in described and f"Namespace:    {kube.namespace}" in described
    assert "FAKE-legacy-proxy-api-key" not in described  # the Secret's value is nowhere in it


async def test_the_operator_page_reads_a_catalog_as_written(
    kube: RealCluster, shell: Shell, operators: Operators, runtimes: ExitStack
) -> None:
    [block] = [b for b in shell_blocks("docs/operator.md") if "kubectl get configmap" in b]
    [step] = commands(block)
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await operators.start()
    await kube.create(connector("legacy-proxy", {"url": {"endpoint": runtime}}, namespace=kube.namespace))
    await wait_condition(kube, "legacy-proxy", "Ready", "True", namespace=kube.namespace, within=30)
    catalog = json.loads(_ok(shell, step))
    assert catalog == {"commands": await catalog_of(runtime, "commands"), "auths": await catalog_of(runtime, "auths")}


def _block(section_marker: str) -> list[str]:
    [block] = [b for b in shell_blocks(README) if section_marker in b]
    return commands(block)


async def test_the_chart_readme_install_upgrade_uninstall_commands_work(kube: RealCluster, shell: Shell) -> None:
    """ "Install" with your own key, its NOTES, "Upgrade" with a values file, "Uninstall"."""
    ns = kube.namespace
    create_secret, install = (_in(ns, step) for step in _block("proxy.apiKey.existingSecret"))
    _ok(shell, create_secret)
    notes = _ok(shell, install)
    for line in commands(next(b for b in shell_blocks(README) if "SPIFFWORKFLOW_BACKEND_CONNECTOR_PROXY_URL" in b)):
        if "<the key" in line:  # a placeholder the NOTES fill in with where the key is
            line = line.replace("<the key in Secret spiff/connector-proxy-keys, key api-key>", "")
            line = line.split("=")[0] + "="
        assert _in(ns, line) in notes, line
    key = await kube.get("v1", "Secret", ns, "spiff-connector-proxy-key")
    assert key is not None and len(base64.b64decode(key["data"]["api-key"])) == 64  # openssl rand -hex 32

    root = shell.root
    # Every value set at install, as the README says (helm upgrade starts from the chart's defaults).
    values = {"proxy": {"replicas": 2, "apiKey": {"existingSecret": "spiff-connector-proxy-key"}}}
    (root / "my-values.yaml").write_text(yaml.safe_dump(values))
    apply_crd, upgrade = (
        _in(ns, step) for step in _block("helm upgrade connector-proxy ./charts/connector-proxy --namespace")
    )
    assert "connectors.connectors.spiffworkflow.org serverside-applied" in _ok(shell, apply_crd)
    assert "has been upgraded" in _ok(shell, upgrade)
    proxy = await kube.get("apps/v1", "Deployment", ns, "connector-proxy")
    assert proxy is not None and proxy["spec"]["replicas"] == 2  # the values file took effect
    env = {e["name"]: e for e in proxy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CONNECTOR_PROXY_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "spiff-connector-proxy-key"

    [uninstall] = (_in(ns, step) for step in _block("helm uninstall"))
    assert "uninstalled" in _ok(shell, uninstall)
    assert await kube.get("apps/v1", "Deployment", ns, "connector-proxy") is None
