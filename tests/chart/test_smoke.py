"""Smoke test of the chart as a whole, without a cluster: render it with the real helm, apply what
`helm install` would create into the in-memory Kubernetes API, run the real operator and a real proxy
from the settings the rendered Deployments give them, apply examples/connector-url.yaml (pointed at a
real connector runtime on 127.0.0.1), and see it reconciled, served and callable, then run the chart's
`helm test` script against that proxy."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kube.connectors import catalog_in_status, runtime_app
from kube.fixtures import KubeEmulator, eventually, run_operator

from chart.helm import HELM_4, helm_for
from chart.manifests import containers, env_values, one, read_settings, restricted_violations
from connector_operator.runner import build_registry
from connector_operator.settings import OperatorSettings
from connector_proxy.app import create_app
from connector_proxy.contract import API_VERSION
from connector_proxy.settings import Settings
from proxytest.paths import ROOT
from proxytest.servers import free_port, serve_in_thread

EXAMPLE = ROOT / "examples" / "connector-url.yaml"
NS = "spiff"
PROXY = "spiff-connector-proxy"
OPERATOR = "spiff-connector-proxy-operator"
SECRETS_DIR = "/var/run/connector-proxy/secrets"
JSON = dict[str, Any]


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def example_objects(endpoint: str) -> tuple[JSON, JSON, str]:
    """examples/connector-url.yaml in namespace NS, its endpoint replaced; Secret data encoded as the API
    server would (the emulator does not turn stringData into data)."""
    secret, connector = [doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc]
    secret["metadata"]["namespace"] = connector["metadata"]["namespace"] = NS
    plain = secret.pop("stringData")
    secret["data"] = {key: base64.b64encode(value.encode()).decode() for key, value in plain.items()}
    connector["spec"]["source"]["url"]["endpoint"] = endpoint
    return secret, connector, plain["api-key"]


def decoded(secret: JSON) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}


async def install(kube: KubeEmulator, objects: list[JSON]) -> None:
    """What `helm install` creates: the CRD first, then every template except hooks (the helm test pod)."""
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for obj in objects:
        if obj["kind"] == "CustomResourceDefinition":
            await kube.apply_crd(obj)
    for obj in objects:
        if obj["kind"] != "CustomResourceDefinition" and "helm.sh/hook" not in obj["metadata"].get("annotations", {}):
            await kube.create(copy.deepcopy(obj))


async def condition(kube: KubeEmulator, name: str, kind: str, status: str, reason: str | None = None) -> JSON:
    async def probe() -> JSON | None:
        obj = await kube.get(API_VERSION, "Connector", NS, name)
        found = next((c for c in (obj or {}).get("status", {}).get("conditions", []) if c["type"] == kind), {})
        ok = found.get("status") == status and (reason is None or found.get("reason") == reason)
        return obj if ok else None

    return await eventually(probe, within=15)


async def test_rendered_chart_runs_against_the_api_emulator(
    kube_emulator: KubeEmulator, servers: ExitStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A real connector runtime on 127.0.0.1: what the federated proxy of the example serves.
    _, _, example_key = example_objects("http://unused")
    runtime = servers.enter_context(serve_in_thread(runtime_app(api_key=example_key)))
    async with httpx.AsyncClient(headers={"Spiff-Connector-Proxy-Api-Key": example_key}) as client:
        runtime_commands = (await client.get(f"{runtime}/v1/commands")).json()

    # Render with the example's API key Secret mounted into the proxy, and install.
    helm = helm_for(HELM_4)
    objects = helm.template(release="spiff", namespace=NS, sets={"proxy.federationSecrets": "{legacy-proxy-api-key}"})
    await install(kube_emulator, objects)
    chart_keys = decoded(one(objects, "Secret", f"{PROXY}-keys", NS))

    # The operator, from its rendered environment.
    operator_deployment = one(objects, "Deployment", OPERATOR, NS)
    operator_env = env_values(operator_deployment["spec"]["template"]["spec"]["containers"][0])
    operator_settings: OperatorSettings = read_settings(monkeypatch, operator_env, OperatorSettings)
    assert operator_settings.namespaces == [NS] and operator_settings.recheck_port == 8081
    operator_settings = operator_settings.model_copy(update={"recheck_port": free_port()})  # not 8081 of this host
    chart_image = operator_settings.runtime_image

    async with run_operator(
        kube_emulator, registry=build_registry(operator_settings), namespaces=operator_settings.namespaces
    ):
        # The chart's bundled HTTP connector (installed before the operator started): its workload runs
        # the chart's image with restricted pod security.
        http = await condition(kube_emulator, "http", "Ready", "False", "WorkloadUnavailable")
        assert http["status"]["sourceKind"] == "image"
        workload = await kube_emulator.get("apps/v1", "Deployment", NS, "connector-http")
        assert workload is not None
        pod = workload["spec"]["template"]["spec"]
        assert [c["image"] for c in containers(pod)] == [chart_image]
        assert [v for v in restricted_violations(pod) if "enableServiceLinks" not in v] == []

        # examples/connector-url.yaml, pointed at the runtime: reconciled to Ready with its commands.
        secret, connector, _ = example_objects(runtime)
        await kube_emulator.create(secret)
        await kube_emulator.create(connector)
        ready = await condition(kube_emulator, "legacy-proxy", "Ready", "True")
        assert (await catalog_in_status(kube_emulator, ready["status"], NS)).commands == runtime_commands
        assert ready["status"]["endpoint"] == runtime

        # A proxy replica, from its rendered environment: Secrets resolved as the kubelet would, the
        # federation Secret "mounted" where the rendered volumeMount puts it.
        proxy_deployment = one(objects, "Deployment", PROXY, NS)
        proxy_pod = proxy_deployment["spec"]["template"]["spec"]
        proxy_env = env_values(proxy_pod["containers"][0], {f"{PROXY}-keys": chart_keys})
        mounts_dir = tmp_path / "secrets"
        volumes = {v["name"]: v for v in proxy_pod["volumes"]}
        for mount in proxy_pod["containers"][0]["volumeMounts"]:
            if mount["mountPath"].startswith(SECRETS_DIR + "/"):
                secret_name = volumes[mount["name"]]["secret"]["secretName"]
                stored = await kube_emulator.get("v1", "Secret", NS, secret_name)
                target = mounts_dir / Path(mount["mountPath"]).relative_to(SECRETS_DIR)
                target.mkdir(parents=True)
                for key, value in decoded(stored or {}).items():
                    (target / key).write_text(value)
        assert proxy_env["CONNECTOR_PROXY_SECRETS_DIR"] == SECRETS_DIR
        proxy_env["CONNECTOR_PROXY_SECRETS_DIR"] = str(mounts_dir)
        proxy_settings: Settings = read_settings(monkeypatch, proxy_env, Settings)
        assert proxy_settings.kubernetes and proxy_settings.namespaces == [NS] and not proxy_settings.embedded_enabled
        api_key = chart_keys["api-key"]
        assert proxy_settings.api_key is not None and proxy_settings.api_key.get_secret_value() == api_key
        proxy = servers.enter_context(serve_in_thread(create_app(proxy_settings)))

        async with httpx.AsyncClient(base_url=proxy, timeout=30) as client:
            keyed = {"Spiff-Connector-Proxy-Api-Key": api_key, "User-Agent": "spiffworkflow-backend"}

            async def served() -> list[JSON] | None:
                listed: list[JSON] = (await client.get("/v1/commands", headers=keyed)).json()
                return listed if listed == runtime_commands else None

            await eventually(served, within=15)
            assert (await client.get("/v1/readiness")).status_code == 200
            assert (await client.get("/v1/commands")).status_code == 401
            done = await client.post("/v1/do/sdkdemo/Greet", json={"name": "Ada"}, headers=keyed)
            assert done.status_code == 200, done.text
            assert done.json()["error"] is None

            # The chart's `helm test` script, against this proxy.
            test_pod = one(objects, "Pod", f"{PROXY}-test", NS)
            container = test_pod["spec"]["containers"][0]
            script = container["args"][0]
            rendered = {e["name"]: e["value"] for e in container["env"] if "value" in e}

            async def helm_test(**env: str) -> subprocess.CompletedProcess[str]:
                variables = {**rendered, "PROXY_URL": proxy, "API_KEY": api_key, "PATH": os.environ.get("PATH", "")}
                return await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-c", script],
                    env={**variables, **env},
                    capture_output=True,
                    text=True,
                    timeout=60,
                )

            # Rendered: the bundled HTTP connector's command is expected (its image Connector runs on a
            # node, tests/e2e/node); this proxy serves the runtime's, so expect those here.
            assert json.loads(rendered["EXPECTED_COMMANDS"]) == ["http/GetRequestV2"]
            result = await helm_test(EXPECTED_COMMANDS=json.dumps(["sdkdemo/Greet"]))
            assert result.returncode == 0, result.stderr
            assert f"lists {len(runtime_commands)} commands" in result.stdout
            # It fails when the proxy does not list a command it should.
            missing = await helm_test(EXPECTED_COMMANDS='["sdkdemo/NotThere"]', WAIT_SECONDS="0")
            assert missing.returncode != 0
            assert "does not list ['sdkdemo/NotThere']" in missing.stderr

        # Deleting the Connector withdraws its commands from the proxy.
        await kube_emulator.delete(API_VERSION, "Connector", NS, "legacy-proxy")
        async with httpx.AsyncClient(base_url=proxy, timeout=30) as client:

            async def withdrawn() -> bool:
                return (await client.get("/v1/commands", headers=keyed)).json() == []

            await eventually(withdrawn, within=15)
