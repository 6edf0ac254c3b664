"""Every shell block of the docs is run as written by a named test, or says here why it cannot be.

A new block, or one whose first command changed, fails this test until it is entered below: a doc
command is never left untested by accident. The Python blocks are all run by ``test_examples.py``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from proxytest.doc_shell import ROOT, commands, shell_blocks

PAGES = sorted(
    str(page.relative_to(ROOT))
    for pattern in (
        "*.md",
        "docs/*.md",
        "charts/*/README.md",
        "connectors/*/README.md",
        "tools/*/README.md",
        "bench/*.md",
    )
    for page in ROOT.glob(pattern)
)
TESTED = "tests/connectors/*/README commands: test_connector_dev_steps_run below"

# (page, how the block's first command starts) -> the test running it as written, or "not run: why".
BLOCKS: dict[tuple[str, str], str] = {
    ("README.md", "make serve"): "tests/docs/test_readme_quick_start.py (make serve; make test is what CI runs)",
    ("README.md", "curl -s localhost:7004/v1/commands"): "tests/docs/test_readme_quick_start.py",
    (
        "README.md",
        "docker build -t registry.example.com/connector-proxy:0.1.0 .",
    ): (
        "not run: needs a registry; the image is built by tools/node/image.sh (make image) and the chart "
        "installed with its repository by tests/e2e/node"
    ),
    ("docs/connectors.md", "connector-proxy new acme_crm && cd acme-crm-connector"): (
        "tests/docs/test_connector_walkthrough.py"
    ),
    ("docs/operator.md", "kubectl apply -f charts/connector-proxy/crds/connectors.spiffworkflow.org.yaml"): (
        "tests/e2e/test_doc_commands.py"
    ),
    ("docs/operator.md", "kubectl get configmap connector-legacy-proxy-catalog"): ("tests/e2e/test_doc_commands.py"),
    (
        "charts/connector-proxy/README.md",
        "docker build -t registry.example.com/connector-proxy:0.1.0 .",
    ): ("not run: needs a registry (see README.md's block)"),
    (
        "charts/connector-proxy/README.md",
        "SPIFFWORKFLOW_BACKEND_CONNECTOR_PROXY_URL=http://connector-proxy.spiff.svc.cluster.local:7004",
    ): ("tests/e2e/test_doc_commands.py (the NOTES helm install prints)"),
    (
        "charts/connector-proxy/README.md",
        "kubectl create secret generic spiff-connector-proxy-key",
    ): ("tests/e2e/test_doc_commands.py"),
    (
        "charts/connector-proxy/README.md",
        "helm install connector-proxy ./charts/connector-proxy --namespace spiff --create-namespace",
    ): (
        "not run as written: its Connector federates a proxy at a cluster DNS name the reader edits; "
        "tests/e2e/node runs the release, its Connectors and the commands through the proxy on a node"
    ),
    (
        "charts/connector-proxy/README.md",
        "helm show crds ./charts/connector-proxy | kubectl apply --server-side --force-conflicts -f -",
    ): ("tests/e2e/test_doc_commands.py (Upgrade); the crds.managed adoption: tests/e2e/test_helm.py"),
    ("charts/connector-proxy/README.md", "helm upgrade connector-proxy ./charts/connector-proxy -n spiff"): (
        "tests/e2e/test_helm.py (test_a_helm_managed_crd_is_adopted_and_kept: the same flags, its release)"
    ),
    (
        "charts/connector-proxy/README.md",
        "helm uninstall connector-proxy --namespace spiff",
    ): "tests/e2e/test_doc_commands.py",
    ("charts/connector-proxy/README.md", "kubectl delete crd connectors.connectors.spiffworkflow.org"): (
        "not run: it deletes the CRD every other test of the session's API server uses"
    ),
    ("charts/connector-proxy/README.md", "export KUBECONFIG=$PWD/.cluster/kubeconfig"): (
        "not run as written: make cluster-up's cluster; tests/e2e/node installs the same release (image "
        "localhost/connector-proxy:dev, pullPolicy Never) on a real node and runs helm test"
    ),
    ("connectors/email/README.md", "make pytest PYTEST_ARGS=tests/connectors/email COV_ARGS="): TESTED,
    ("connectors/http/README.md", "make pytest PYTEST_ARGS=tests/connectors/http COV_ARGS="): TESTED,
    (
        "connectors/postgres/README.md",
        "CONNECTOR_PROXY_CONFIG__POSTGRES_DEFAULT_DSN=",
    ): (
        "not run as written: needs that database; tests/connectors/postgres serves pg/* against a real "
        "PostgreSQL configured the same way"
    ),
    ("connectors/postgres/README.md", "tools/postgres/install.sh"): TESTED,
    ("tools/k8s/README.md", "tools/k8s/build.sh"): "make k8s runs it (make test)",
    ("tools/k8s/README.md", ".venv/bin/python tools/k8s/controlplane.py up --state-dir .cluster"): (
        "not run as written: make cluster-up; tests/e2e starts the same control plane (tools/k8s/controlplane.py)"
    ),
    ("tools/node/README.md", "tools/node/image.sh --export /tmp/connector-proxy-dev.tar"): (
        "tests/e2e/node exports the image the same way (tools/node/image.sh)"
    ),
}


def _key(page: str, first: str) -> tuple[str, str] | None:
    keys = [key for key in BLOCKS if key[0] == page and first.startswith(key[1])]
    return max(keys, key=lambda key: len(key[1])) if keys else None


def _found() -> dict[tuple[str, str], list[list[str]]]:
    """The blocks by their BLOCKS key (or by their page and first command when none matches)."""
    found: dict[tuple[str, str], list[list[str]]] = {}
    for page in PAGES:
        for block in shell_blocks(page):
            steps = commands(block)
            if steps:
                found.setdefault(_key(page, steps[0]) or (page, steps[0]), []).append(steps)
    return found


def test_every_shell_block_is_accounted_for() -> None:
    found = _found()
    assert sorted(set(found) - set(BLOCKS)) == [], "enter each new block in BLOCKS with the test running it"
    assert sorted(set(BLOCKS) - set(found)) == [], "a block listed here is gone or its first command changed"


@pytest.mark.parametrize("entry", sorted(set(BLOCKS.values())))
def test_the_named_tests_exist(entry: str) -> None:
    if entry.startswith("not run") or entry.startswith("make "):
        return
    path = entry.split(" ")[0]
    if entry == TESTED:
        path = "tests/docs/test_shell_blocks.py"
    assert (ROOT / path).exists(), entry


def _dev_steps() -> list[tuple[str, str]]:
    return [
        (key[0], step)
        for key, blocks in _found().items()
        if BLOCKS.get(key) == TESTED
        for steps in blocks
        for step in steps
    ]


@pytest.mark.parametrize(("page", "step"), _dev_steps())
def test_connector_dev_steps_run(page: str, step: str) -> None:
    """A connector README's development steps, from the repository root in its virtualenv: the
    lint and type checks run as written; ``make pytest`` and the install script are checked, not
    run (``make test`` runs both: the same suite again would double its time)."""
    words = shlex.split(step.split(" && ")[0])
    if words[0] == "make":
        dry = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, dry.stderr
        paths = [w.split("=", 1)[1] for w in words if w.startswith("PYTEST_ARGS=")]
        assert paths and all((ROOT / path).is_dir() for path in paths), step
        return
    if words[0].startswith("tools/"):
        assert os.access(ROOT / words[0], os.X_OK), step
        return
    assert words[0].startswith(".venv/bin/"), step
    env = {**os.environ, "PATH": f"{Path(ROOT / '.venv/bin')}{os.pathsep}{os.environ.get('PATH', '')}"}
    ran = subprocess.run(["bash", "-c", step], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, f"{step}: {ran.stdout[-2000:]}{ran.stderr[-2000:]}"
