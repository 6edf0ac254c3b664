"""The whole install path with real containers, in the order a platform team walks it.

helm install from the image built from the Dockerfile; a pip Connector whose packages come from an
index served here over plain HTTP (one built on the SDK, one community package; one more from a
Git repository) installed by the init container; the commands listed by the proxy's Service and run
in the workload pod through it; a Secret rotation rolling the pod; a killed pod failing only its own
commands; deletion; and ``helm test``.
"""

from __future__ import annotations

import base64
import email.policy
import json
import subprocess
import sys
from collections.abc import Iterator
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from e2e.conftest import Kubectl
from e2e.node.conftest import IMAGE_REPOSITORY, IMAGE_TAG, PROXY, RELEASE, Release, rollout, wait
from node import Node

from connector_proxy.catalog_map import read_catalog_map
from postgres_server import PostgresServer, postgres_server
from proxytest.package_index import FIXTURE_SOURCES, IndexOutage, add_git_repository, build_index, serve_index
from proxytest.packages import SDK_FIXTURES
from proxytest.paths import ROOT
from proxytest.servers import free_port


@pytest.fixture(scope="module")
def index(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The package index, on the node's address (the pods' gateway), over plain http://."""
    root = build_index(tmp_path_factory.mktemp("index"), FIXTURE_SOURCES)
    add_git_repository(root, SDK_FIXTURES / "spiff-greeter-connector", "greeter")
    with serve_index(root, node.node_ip) as url:
        yield url


def _headers(release: Release) -> dict[str, str]:
    return {"Spiff-Connector-Proxy-Api-Key": release.api_key, "User-Agent": "spiffworkflow-backend"}


def _listed(release: Release) -> set[str]:
    """The commands the proxy Service lists; none while it cannot be reached (endpoints changing)."""
    try:
        with httpx.Client(timeout=10) as client:
            answer = client.get(f"{release.proxy_url}/v1/commands", headers=_headers(release))
    except httpx.TransportError:
        return set()
    return {c["id"] for c in answer.json()} if answer.status_code == 200 else set()


def _do(release: Release, command: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=60) as client:
        return client.post(f"{release.proxy_url}/v1/do/{command}", json=body, headers=_headers(release))


def _connector(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl("get", "connector", name, "-n", namespace, "-o", "json").stdout)
    return found


def _command_ids(kubectl: Kubectl, namespace: str, status: dict[str, Any]) -> set[str]:
    """The ids of the catalog the status names, from its ConfigMap (checked against catalogHash)."""
    name = status["catalogConfigMap"]
    config_map = json.loads(kubectl("get", "configmap", name, "-n", namespace, "-o", "json").stdout)
    stored = read_catalog_map(config_map)
    assert stored.hash == status["catalogHash"]
    return {c["id"] for c in stored.commands}


def _ready(kubectl: Kubectl, namespace: str, name: str) -> bool:
    conditions = (_connector(kubectl, namespace, name).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _apply(kubectl: Kubectl, documents: list[dict[str, Any]]) -> None:
    kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in documents))


def _pods(kubectl: Kubectl, namespace: str, selector: str) -> list[dict[str, Any]]:
    """The pods that are not on their way out (a rolled or deleted pod terminates gracefully for a while)."""
    listed = json.loads(kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)
    return [pod for pod in listed["items"] if not pod["metadata"].get("deletionTimestamp")]


def test_the_chart_runs_on_the_node(release: Release, kubectl: Kubectl) -> None:
    for component in ("proxy", "operator"):
        pods = _pods(kubectl, release.namespace, f"app.kubernetes.io/component={component}")
        assert pods, component
        for pod in pods:
            assert pod["status"]["phase"] == "Running", pod["status"]
            assert all(c["ready"] for c in pod["status"]["containerStatuses"]), component
    # The bundled HTTP connector: an image Connector running the project image.
    wait(lambda: _ready(kubectl, release.namespace, "http"), within=180, what="the http Connector Ready")
    table = kubectl("get", "connectors", "-n", release.namespace).stdout.splitlines()
    assert table[1].split()[:5] == ["http", "True", "Ready", "image", "6"], table
    wait(lambda: "http/GetRequestV2" in _listed(release), within=60, what="http/* listed by the proxy Service")
    liveness = _do(release, "http/GetRequestV2", {"url": f"http://{PROXY}.{release.namespace}.svc:7004/v1/liveness"})
    assert liveness.status_code == 200, liveness.text
    assert liveness.json()["command_response"]["body"] == {"ok": True}


def test_helm_test_passes(release: Release, control_plane: Any) -> None:
    from chart.helm import HELM_4, helm_for

    helm = helm_for(HELM_4)
    base = ["--kubeconfig", str(control_plane.kubeconfig), "--namespace", release.namespace]
    result = helm.run("test", RELEASE, *base, "--logs", "--timeout", "180s")
    assert "Phase:          Succeeded" in result.stdout, result.stdout
    assert "lists" in result.stdout


def _pip_connector(namespace: str, name: str, index: str, requirements: list[str]) -> list[dict[str, Any]]:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-config", "namespace": namespace},
        "data": {"GREETING": base64.b64encode(b"Hello").decode()},
    }
    connector = {
        "apiVersion": "connectors.spiffworkflow.org/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"pip": {"requirements": requirements, "indexUrl": f"{index}/simple/"}},
            "configFrom": [{"secretRef": {"name": f"{name}-config"}}],
            "timeoutSeconds": 20,
        },
    }
    return [secret, connector]


def test_a_pip_connector_from_a_plain_http_index(release: Release, kubectl: Kubectl, index: str) -> None:
    """The init container installs from an http:// index (--trusted-host), a package built on the SDK
    (the image's SDK wheel), and the workload serves its own commands only (no http/*)."""
    requirements = ["spiff-greeter-connector==1.0.0", "connector-example==0.1.0"]
    _apply(kubectl, _pip_connector(release.namespace, "greeter", index, requirements))
    wait(lambda: _ready(kubectl, release.namespace, "greeter"), within=240, what="the pip Connector Ready")
    status = _connector(kubectl, release.namespace, "greeter")["status"]
    ids = _command_ids(kubectl, release.namespace, status)
    assert "greeter/Hello" in ids and "example/Echo" in ids
    assert not [i for i in ids if i.startswith("http/")], "a pip workload serves the image's bundled commands"
    assert status["conflicts"] == []
    rows = {
        line.split()[0]: line.split()
        for line in kubectl("get", "connectors", "-n", release.namespace).stdout.splitlines()[1:]
    }
    assert rows["greeter"][1:5] == ["True", "Ready", "pip", str(len(ids))]

    wait(lambda: "greeter/Hello" in _listed(release), within=60, what="greeter/Hello listed")
    answer = _do(release, "greeter/Hello", {"name": "Ada"})
    assert answer.status_code == 200, answer.text
    body = answer.json()["command_response"]["body"]
    pods = _pods(kubectl, release.namespace, "app.kubernetes.io/instance=greeter")
    assert body["message"] == "Hello, Ada!" and body["host"] in {p["metadata"]["name"] for p in pods}

    # The workload takes calls only with the proxy's (or operator's) ServiceAccount token: called by
    # the proxy pod's HTTP connector, which sends none, it answers 401.
    direct = _do(release, "http/GetRequestV2", {"url": f"{status['endpoint']}/v1/commands"})
    assert direct.status_code == 200, direct.text
    assert direct.json()["command_response"]["http_status"] == 401
    assert "caller token" in json.dumps(direct.json()["command_response"]["body"])


def test_secret_rotation_rolls_the_workload_pod(release: Release, kubectl: Kubectl) -> None:
    before = {p["metadata"]["name"] for p in _pods(kubectl, release.namespace, "app.kubernetes.io/instance=greeter")}
    patch = json.dumps({"data": {"GREETING": base64.b64encode(b"Bonjour").decode()}})
    kubectl("patch", "secret", "greeter-config", "-n", release.namespace, "--type=merge", "-p", patch)

    def greets_anew() -> bool:
        answer = _do(release, "greeter/Hello", {"name": "Ada"})
        body = answer.json().get("command_response", {}).get("body") or {}
        return answer.status_code == 200 and body.get("message") == "Bonjour, Ada!"

    wait(greets_anew, within=180, what="the rotated greeting")

    def rolled() -> bool:
        after = {p["metadata"]["name"] for p in _pods(kubectl, release.namespace, "app.kubernetes.io/instance=greeter")}
        return bool(after) and not after & before

    wait(rolled, within=120, what="the old pod replaced")


def test_a_killed_workload_pod_fails_only_its_own_commands(release: Release, kubectl: Kubectl) -> None:
    """While the workload is gone (its replacement cannot install: the index is down), its commands
    answer 503 connector_unavailable, which spiff-arena retries, and stay listed; other connectors'
    commands are unaffected; once the workload is back its commands work again."""
    selector = "app.kubernetes.io/instance=greeter"
    [pod] = [p["metadata"]["name"] for p in _pods(kubectl, release.namespace, selector)]
    IndexOutage.down.set()
    try:
        kubectl("delete", "pod", pod, "-n", release.namespace, "--wait=true", "--timeout=60s")

        def failing() -> bool:
            return _do(release, "greeter/Hello", {"name": "Ada"}).status_code != 200

        wait(failing, within=60, what="greeter/Hello failing while its workload is gone")
        answer = _do(release, "greeter/Hello", {"name": "Ada"})
        assert (answer.status_code, answer.json()["error"]["error_code"]) == (503, "connector_unavailable")
        assert "greeter/Hello" in _listed(release)  # still listed: the outage is not a 404
        neighbour = _do(
            release, "http/GetRequestV2", {"url": f"http://{PROXY}.{release.namespace}.svc:7004/v1/liveness"}
        )
        assert neighbour.status_code == 200, neighbour.text
    finally:
        IndexOutage.down.clear()

    def back() -> bool:
        return _do(release, "greeter/Hello", {"name": "Ada"}).status_code == 200

    wait(back, within=240, every=2, what="the workload back")


def test_a_git_requirement_installs(release: Release, kubectl: Kubectl, index: str) -> None:
    """``pkg @ git+http://...``: the init container needs git (and the index's setuptools to build)."""
    kubectl("delete", "connector", "greeter", "-n", release.namespace, "--wait=true")
    requirement = f"spiff-greeter-connector @ git+{index}/git/greeter.git"
    _apply(kubectl, _pip_connector(release.namespace, "greeter-git", index, [requirement]))
    wait(lambda: _ready(kubectl, release.namespace, "greeter-git"), within=240, what="the git Connector Ready")
    wait(lambda: "greeter/Hello" in _listed(release), within=60, what="greeter/Hello listed again")
    assert _do(release, "greeter/Hello", {"name": "Git"}).json()["command_response"]["body"]["message"] == "Hello, Git!"


def test_a_deleted_connector_is_gone_everywhere(release: Release, kubectl: Kubectl) -> None:
    kubectl("delete", "connector", "greeter-git", "-n", release.namespace, "--wait=true")
    wait(lambda: "greeter/Hello" not in _listed(release), within=60, what="greeter/Hello withdrawn")
    answer = _do(release, "greeter/Hello", {"name": "Ada"})
    assert (answer.status_code, answer.json()["error"]["error_code"]) == (404, "command_not_found")

    def collected() -> bool:
        names = kubectl("get", "deployments,pods", "-n", release.namespace, "-o", "name").stdout
        return "connector-greeter" not in names

    wait(collected, within=120, what="the workload collected")
    rollout(kubectl, release.namespace, PROXY)  # the proxy itself is unaffected
    assert "http/GetRequestV2" in _listed(release)


def test_an_image_connector_runs_its_own_image(
    release: Release, kubectl: Kubectl, node: Node, index: str, tmp_path: Path
) -> None:
    """An image Connector: an image of a connector author's own (the project image with the SDK-built
    fixture package installed) runs as the workload and serves its commands through the proxy."""
    context = tmp_path / "context"
    context.mkdir()
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(context),
            str(SDK_FIXTURES / "spiff-greeter-connector"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (context / "Containerfile").write_text(
        f"FROM {IMAGE_REPOSITORY}:{IMAGE_TAG}\n"
        "COPY *.whl /tmp/wheels/\n"
        "USER 0:0\n"
        "RUN pip install --no-deps --no-index /tmp/wheels/*.whl && rm -rf /tmp/wheels\n"
        "USER 10001:10001\n"
    )
    tag = "localhost/greeter-connector:dev"
    archive = tmp_path / "greeter.tar"
    for command in (
        ["podman", "build", "--pull=never", "--network", "none", "--format", "docker", "-t", tag, str(context)],
        ["podman", "save", "--format", "docker-archive", "-o", str(archive), tag],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    node.load_image(archive)
    _apply(
        kubectl,
        [
            {
                "apiVersion": "connectors.spiffworkflow.org/v1alpha1",
                "kind": "Connector",
                "metadata": {"name": "greeter-image", "namespace": release.namespace},
                # The image holds the project's first-party connectors too: this Connector serves greeter alone.
                "spec": {
                    "source": {"image": {"ref": tag, "connectors": ["greeter"]}},
                    "config": [{"name": "GREETING", "value": "Hi"}],
                },
            }
        ],
    )
    wait(lambda: _ready(kubectl, release.namespace, "greeter-image"), within=180, what="the image Connector Ready")
    status = _connector(kubectl, release.namespace, "greeter-image")["status"]
    assert status["sourceKind"] == "image" and _command_ids(kubectl, release.namespace, status) == {"greeter/Hello"}
    wait(lambda: "greeter/Hello" in _listed(release), within=60, what="greeter/Hello listed from the image")
    body = _do(release, "greeter/Hello", {"name": "Ada"}).json()["command_response"]["body"]
    pods = {
        p["metadata"]["name"] for p in _pods(kubectl, release.namespace, "app.kubernetes.io/instance=greeter-image")
    }
    assert body["message"] == "Hi, Ada!" and body["host"] in pods
    kubectl("delete", "connector", "greeter-image", "-n", release.namespace, "--wait=true")


@pytest.fixture(scope="module")
def database(node: Node) -> Iterator[PostgresServer]:
    """A PostgreSQL server on the node's address (the pods' gateway), with a table to read."""
    with postgres_server(host=node.node_ip) as server:
        server.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric(10, 2))")
        server.execute("INSERT INTO orders VALUES (1, 12.50), (2, 99.99)")
        yield server


def test_the_postgres_connector_runs_from_the_project_image(
    release: Release, kubectl: Kubectl, database: PostgresServer
) -> None:
    """As the chart's postgresConnector renders it: the project image serving pg alone (not the http and
    email connectors it holds too), its connection from a Secret, reaching a real database from the pod."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "orders-db", "namespace": release.namespace},
        "stringData": {
            "POSTGRES_ORDERS_HOST": database.host,
            "POSTGRES_ORDERS_PORT": str(database.port),
            "POSTGRES_ORDERS_USER": "postgres",
            "POSTGRES_ORDERS_PASSWORD": database.password,
            "POSTGRES_ORDERS_DBNAME": "postgres",
        },
    }
    image = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
    connector = {
        "apiVersion": "connectors.spiffworkflow.org/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "pg", "namespace": release.namespace},
        "spec": {
            "source": {"image": {"ref": image, "port": 7004, "connectors": ["pg"]}},
            "configFrom": [{"secretRef": {"name": "orders-db"}}],
        },
    }
    _apply(kubectl, [secret, connector])
    wait(lambda: _ready(kubectl, release.namespace, "pg"), within=180, what="the pg Connector Ready")
    status = _connector(kubectl, release.namespace, "pg")["status"]
    assert _command_ids(kubectl, release.namespace, status) == {"pg/Query", "pg/Execute", "pg/Transaction"}
    wait(lambda: "pg/Query" in _listed(release), within=60, what="pg/Query listed by the proxy Service")
    sql = "SELECT id, total FROM orders WHERE total > %s ORDER BY id"
    answer = _do(release, "pg/Query", {"connection": "orders", "sql": sql, "parameters": [20]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["error"] is None, answer.text
    assert answer.json()["command_response"]["body"]["rows"] == [{"id": 2, "total": "99.99"}]
    assert database.password not in answer.text
    kubectl("delete", "connector", "pg", "-n", release.namespace, "--wait=true")
    kubectl("delete", "secret", "orders-db", "-n", release.namespace)


class _Mailbox:
    """An aiosmtpd handler keeping what it was handed."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 OK"


def test_the_email_connector_runs_from_the_project_image(release: Release, kubectl: Kubectl, node: Node) -> None:
    """As the chart's emailConnector renders it: the project image serving email alone, sending to an
    SMTP server on the node's address (the pods' gateway)."""
    mailbox = _Mailbox()
    port = free_port()
    smtp = Controller(mailbox, hostname=node.node_ip, port=port, ready_timeout=10)
    smtp.start()
    try:
        config = {
            "EMAIL_SMTP_HOST": node.node_ip,
            "EMAIL_SMTP_PORT": str(port),
            "EMAIL_SMTP_TLS": "none",
            "EMAIL_DEFAULT_SENDER": "Workflow <noreply@example.com>",
        }
        connector = {
            "apiVersion": "connectors.spiffworkflow.org/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": "email", "namespace": release.namespace},
            "spec": {
                "source": {"image": {"ref": f"{IMAGE_REPOSITORY}:{IMAGE_TAG}", "connectors": ["email"]}},
                "config": [{"name": key, "value": value} for key, value in config.items()],
            },
        }
        _apply(kubectl, [connector])
        wait(lambda: _ready(kubectl, release.namespace, "email"), within=180, what="the email Connector Ready")
        status = _connector(kubectl, release.namespace, "email")["status"]
        assert _command_ids(kubectl, release.namespace, status) == {"email/SendEmail"}
        wait(lambda: "email/SendEmail" in _listed(release), within=60, what="email/SendEmail listed")
        body = {"to": ["ops@example.com"], "subject": "Order 42", "text": "Shipped."}
        answer = _do(release, "email/SendEmail", body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["error"] is None, answer.text
        assert answer.json()["command_response"]["body"]["accepted"] == ["ops@example.com"]
        [(recipients, raw)] = mailbox.received
        assert recipients == ["ops@example.com"]
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert (message["Subject"], message.get_content().strip()) == ("Order 42", "Shipped.")
        kubectl("delete", "connector", "email", "-n", release.namespace, "--wait=true")
    finally:
        smtp.stop()


def test_the_image_installs_the_locked_versions(image_archive: Path) -> None:
    """Two builds of one commit install the same versions: those of constraints.txt, which the init
    container of every pip Connector also gets as constraints."""
    shown = subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            "--network",
            "none",
            "--no-healthcheck",
            "--entrypoint",
            "cat",
            f"{IMAGE_REPOSITORY}:{IMAGE_TAG}",
            "/opt/connector-runtime/constraints.txt",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    locked = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if not line.startswith("#")]
    assert sorted(line for line in shown if not line.startswith("spiff-connector-sdk==")) == sorted(locked)
    assert any(line.startswith("spiff-connector-sdk==") for line in shown)
