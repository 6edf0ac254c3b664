"""The operator against the real API server: kopf, the real clients, admission, garbage collection.

Connector runtimes are real proxies on 127.0.0.1, reached through ``url`` sources. Workloads of
``pip``/``image`` sources are checked as objects here (owner references, labels, rollout on Secret
rotation, scale to zero, collection by the garbage collector).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any, TypeVar

import httpx
import pytest
from e2e.conftest import Kubectl
from e2e.realkube import ClusterApiError, OperatorInThread, Operators, RealCluster
from kube.connectors import (
    KIND,
    KeyedRuntime,
    assert_owned_workload,
    catalog_in_status,
    catalog_of,
    condition,
    connector,
    next_second,
    runtime_app,
    secret,
    status_of,
    wait_condition,
)
from kube.fixtures import eventually
from prometheus_client.parser import text_string_to_metric_families

from connector_operator.kube import Kube
from connector_operator.reconcile import RetryLater, Services, reconcile
from connector_operator.settings import OperatorSettings
from connector_proxy.contract import API_VERSION, load_kube_config
from proxytest.servers import free_port, serve_in_thread

T = TypeVar("T")
WITHIN = 60.0  # seconds: a real cluster (and its garbage collector) is slower than the emulator


def conn(kube: RealCluster, name: str, source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return connector(name, source, namespace=kube.namespace, **spec)


def secret_in(kube: RealCluster, name: str, **data: str) -> dict[str, Any]:
    return secret(name, namespace=kube.namespace, **data)


async def wait_for(kube: RealCluster, name: str, kind: str, value: str, reason: str | None = None) -> dict[str, Any]:
    return await wait_condition(kube, name, kind, value, reason, namespace=kube.namespace, within=WITHIN)


async def until(probe: Callable[[], Awaitable[T | None]]) -> T:
    return await eventually(probe, within=WITHIN)


async def deployment_of(kube: RealCluster, name: str) -> dict[str, Any] | None:
    return await kube.get("apps/v1", "Deployment", kube.namespace, f"connector-{name}")


async def test_url_source_is_discovered_and_ready(kube: RealCluster, operators: Operators, runtimes: ExitStack) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await operators.start()
    await kube.create(conn(kube, "demo", {"url": {"endpoint": runtime}}))
    status = await wait_for(kube, "demo", "Ready", "True")
    # Exactly as the workload serves them (null values too), in the Connector's own ConfigMap.
    assert "commands" not in status and "auths" not in status
    stored = await catalog_in_status(kube, status, kube.namespace)
    assert stored.commands == await catalog_of(runtime, "commands")
    assert stored.auths == await catalog_of(runtime, "auths")
    assert (status["endpoint"], status["sourceKind"], status["observedGeneration"]) == (runtime, "url", 1)
    assert status["catalogHash"].startswith("sha256:")
    assert await kube.list("apps/v1", "Deployment", kube.namespace) == []


async def test_url_source_with_api_key_secret(kube: RealCluster, operators: Operators, runtimes: ExitStack) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app(api_key="cluster-e2e-key")))
    await operators.start()
    await kube.create(secret_in(kube, "remote-key", token="cluster-e2e-key"))
    source = {"url": {"endpoint": runtime, "apiKeySecretRef": {"name": "remote-key", "key": "token"}}}
    await kube.create(conn(kube, "keyed", source))
    status = await wait_for(kube, "keyed", "Ready", "True")
    assert status["commandCount"] > 0
    assert "cluster-e2e-key" not in str(status)


async def test_unreachable_endpoint_is_reported(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(conn(kube, "unreachable", {"url": {"endpoint": f"http://127.0.0.1:{free_port()}"}}))
    status = await wait_for(kube, "unreachable", "Ready", "False", "Unreachable")
    assert status["sourceKind"] == "url"


async def test_invalid_spec_is_refused_at_admission(kube: RealCluster) -> None:
    bad = conn(kube, "bad", {"url": {"endpoint": "http://example"}, "pip": {"requirements": ["x"]}})
    with pytest.raises(ClusterApiError) as refused:
        await kube.create(bad)
    assert refused.value.status == 422
    assert "source" in str(refused.value.body)


async def test_pip_source_gets_an_owned_workload(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(secret_in(kube, "pip-config", API_TOKEN="t0k3n-value"))
    spec = {
        "config": [
            {"name": "REGION", "value": "eu"},
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "pip-config", "key": "API_TOKEN"}}},
        ]
    }
    await kube.create(conn(kube, "pipped", {"pip": {"requirements": ["connector-example==1.0"]}}, **spec))
    owner = await kube.get(API_VERSION, KIND, kube.namespace, "pipped")
    assert owner is not None
    deployment = await until(lambda: deployment_of(kube, "pipped"))
    # The operator creates the Deployment, then the Service.
    service = await until(lambda: kube.get("v1", "Service", kube.namespace, "connector-pipped"))
    assert_owned_workload(owner, "pipped", deployment, service)
    assert "t0k3n-value" not in str(deployment)
    await wait_for(kube, "pipped", "Ready", "False")


async def _gone(found: Awaitable[Any]) -> bool | None:
    return True if await found is None else None


async def test_a_users_object_with_a_connectors_name_is_left_alone(
    kube: RealCluster, operators: Operators, runtimes: ExitStack
) -> None:
    """A ConfigMap or Service already named as the Connector's own would be is someone else's: the
    operator neither merges into it (which would make it the Connector's, collected with it) nor
    deletes it; the Connector says NameTaken until the name is free, then converges."""
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    ns = kube.namespace
    users_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "connector-taken-catalog", "namespace": ns},
    }
    await kube.create({**users_map, "data": {"mine": "yes"}})
    users_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "connector-served", "namespace": ns},
        "spec": {"selector": {"app": "mine"}, "ports": [{"port": 8080}]},
    }
    await kube.create(users_service)
    await operators.start()
    await kube.create(conn(kube, "taken", {"url": {"endpoint": runtime}}))
    await kube.create(conn(kube, "served", {"pip": {"requirements": ["connector-example"]}}))
    for name, kind, object_name in (
        ("taken", "ConfigMap", "connector-taken-catalog"),
        ("served", "Service", "connector-served"),
    ):
        status = await wait_for(kube, name, "Ready", "False", "NameTaken")
        assert f"{kind} {ns}/{object_name} exists and is not this Connector's" in condition(status, "Ready")["message"]
    config_map = await kube.get("v1", "ConfigMap", ns, "connector-taken-catalog")
    service = await kube.get("v1", "Service", ns, "connector-served")
    assert config_map is not None and service is not None
    assert (config_map["data"], config_map.get("binaryData")) == ({"mine": "yes"}, None)
    assert service["spec"]["selector"] == {"app": "mine"}
    for obj in (config_map, service):
        assert not obj["metadata"].get("ownerReferences")

    await kube.delete("v1", "ConfigMap", ns, "connector-taken-catalog")  # the name is free: the next retry converges
    status = await wait_for(kube, "taken", "Ready", "True")
    assert (await catalog_in_status(kube, status, ns)).commands == await catalog_of(runtime, "commands")

    # Switched to a url source, the Connector's own Deployment goes; the user's Service stays.
    assert await deployment_of(kube, "served") is not None
    await kube.patch(API_VERSION, KIND, ns, "served", {"spec": {"source": {"pip": None, "url": {"endpoint": runtime}}}})
    await wait_for(kube, "served", "Ready", "True")
    assert await until(lambda: _gone(deployment_of(kube, "served")))
    kept = await kube.get("v1", "Service", ns, "connector-served")
    assert kept is not None and kept["spec"]["selector"] == {"app": "mine"}


async def test_secret_rotation_rolls_the_workload(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(secret_in(kube, "rot", KEY="one"))
    source = {"image": {"ref": "registry.example/conn@sha256:" + "a" * 64}}
    await kube.create(conn(kube, "rot", source, configFrom=[{"secretRef": {"name": "rot"}}]))

    async def template_hash() -> str | None:
        deployment = await deployment_of(kube, "rot")
        annotations = ((deployment or {}).get("spec", {}).get("template", {}).get("metadata", {})).get("annotations")
        return (annotations or {}).get("connectors.spiffworkflow.org/secrets-hash")

    first = await until(template_hash)
    await kube.patch("v1", "Secret", kube.namespace, "rot", {"data": {"KEY": base64.b64encode(b"two").decode()}})

    async def changed() -> str | None:
        current = await template_hash()
        return current if current and current != first else None

    assert await until(changed) != first


async def test_config_maps_are_waited_for_and_their_changes_roll_the_workload(
    kube: RealCluster, operators: Operators
) -> None:
    await operators.start()
    source = {"image": {"ref": "registry.example/conn@sha256:" + "b" * 64}}
    spec = {
        "config": [{"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "crm-settings", "key": "region"}}}],
        "configFrom": [{"configMapRef": {"name": "crm-defaults"}}],
    }
    await kube.create(conn(kube, "crm", source, **spec))
    status = await wait_for(kube, "crm", "Ready", "False", "ConfigMapMissing")
    assert condition(status, "Ready")["message"] == "Referenced ConfigMap(s) not found: crm-defaults, crm-settings."
    assert await deployment_of(kube, "crm") is None

    def config_map(name: str, **data: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": kube.namespace},
            "data": data,
        }

    await kube.create(config_map("crm-defaults", CRM_TIMEOUT="5"))
    await kube.create(config_map("crm-settings", region="eu"))  # each creation is an event the operator follows
    deployment = await until(lambda: deployment_of(kube, "crm"))
    [main] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "connector"]
    assert main["envFrom"] == [{"prefix": "CONNECTOR_PROXY_CONFIG__", "configMapRef": {"name": "crm-defaults"}}]
    region = next(item for item in main["env"] if item["name"] == "CONNECTOR_PROXY_CONFIG__REGION")
    assert region["valueFrom"] == {"configMapKeyRef": {"name": "crm-settings", "key": "region"}}

    async def template_hash() -> str | None:
        current = await deployment_of(kube, "crm")
        annotations = ((current or {}).get("spec", {}).get("template", {}).get("metadata", {})).get("annotations")
        return (annotations or {}).get("connectors.spiffworkflow.org/secrets-hash")

    first = await until(template_hash)
    await kube.patch("v1", "ConfigMap", kube.namespace, "crm-defaults", {"data": {"CRM_TIMEOUT": "9"}})

    async def changed() -> str | None:
        current = await template_hash()
        return current if current and current != first else None

    assert await until(changed) != first


async def test_workload_options_follow_the_spec_removals_included(kube: RealCluster, operators: Operators) -> None:
    """A merge patch keeps map keys it is not told to remove: the operator nulls the ones dropped."""
    await operators.start()
    source = {"image": {"ref": "registry.example/conn@sha256:" + "b" * 64}}
    workload = {
        "nodeSelector": {"zone": "a", "disk": "ssd"},
        "podLabels": {"team": "crm", "tier": "gold"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}},
    }  # fmt: skip
    await kube.create(conn(kube, "opts", source, workload=workload))

    async def pod_spec(check: Any) -> dict[str, Any] | None:
        deployment = await deployment_of(kube, "opts")
        template = (deployment or {}).get("spec", {}).get("template", {})
        return template if template and check(template) else None

    first = await until(lambda: pod_spec(lambda t: t["spec"].get("nodeSelector") == workload["nodeSelector"]))
    assert first["metadata"]["labels"]["tier"] == "gold"
    assert first["spec"]["tolerations"] == workload["tolerations"]
    assert "podAntiAffinity" in first["spec"]["affinity"]
    reduced = {"nodeSelector": {"zone": "a"}, "podLabels": {"team": "crm"}}
    await kube.patch(API_VERSION, KIND, kube.namespace, "opts", {"spec": {"workload": None}})
    await kube.patch(API_VERSION, KIND, kube.namespace, "opts", {"spec": {"workload": reduced}})
    after = await until(lambda: pod_spec(lambda t: t["spec"].get("nodeSelector") == {"zone": "a"}))
    assert "tier" not in after["metadata"]["labels"] and after["metadata"]["labels"]["team"] == "crm"
    assert not after["spec"].get("tolerations")
    assert not after["spec"].get("affinity")


async def test_suspend_scales_to_zero_and_withdraws_commands(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(conn(kube, "sus", {"pip": {"requirements": ["connector-example"]}}))
    await until(lambda: deployment_of(kube, "sus"))
    await kube.patch(API_VERSION, KIND, kube.namespace, "sus", {"spec": {"suspend": True}})
    status = await wait_for(kube, "sus", "Ready", "False", "Suspended")
    assert status["commandCount"] == 0 and "catalogHash" not in status

    async def scaled_to_zero() -> bool:
        deployment = await deployment_of(kube, "sus")
        return deployment is not None and deployment["spec"]["replicas"] == 0

    assert await until(scaled_to_zero)


async def test_command_id_conflict_oldest_wins(kube: RealCluster, operators: Operators, runtimes: ExitStack) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await operators.start()
    await kube.create(conn(kube, "zeta-old", {"url": {"endpoint": runtime}}))
    await wait_for(kube, "zeta-old", "Ready", "True")
    await next_second()
    await kube.create(conn(kube, "alpha-new", {"url": {"endpoint": runtime}}))
    status = await wait_for(kube, "alpha-new", "ConflictFree", "False", "CommandIdConflict")
    assert f"served by {kube.namespace}/zeta-old" in condition(status, "ConflictFree")["message"]
    assert condition(await status_of(kube, "zeta-old", kube.namespace), "ConflictFree")["status"] == "True"


async def test_update_rediscovers_and_deletion_collects_the_workload(
    kube: RealCluster, operators: Operators, runtimes: ExitStack
) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await operators.start()
    await kube.create(conn(kube, "moving", {"url": {"endpoint": runtime}}))
    await wait_for(kube, "moving", "Ready", "True")
    dead = f"http://127.0.0.1:{free_port()}"
    await kube.patch(API_VERSION, KIND, kube.namespace, "moving", {"spec": {"source": {"url": {"endpoint": dead}}}})
    status = await wait_for(kube, "moving", "Ready", "False", "Unreachable")
    assert status["observedGeneration"] == 2

    await kube.create(conn(kube, "owned", {"pip": {"requirements": ["connector-example"]}}))
    await until(lambda: deployment_of(kube, "owned"))
    for name in ("moving", "owned"):
        obj = await kube.get(API_VERSION, KIND, kube.namespace, name)
        assert obj is not None and not obj["metadata"].get("finalizers")
        await kube.delete(API_VERSION, KIND, kube.namespace, name)

    async def collected() -> bool:
        gone = await kube.get(API_VERSION, KIND, kube.namespace, "owned") is None
        return gone and await deployment_of(kube, "owned") is None

    assert await until(collected)  # the garbage collector follows the owner reference


async def test_resume_after_restart(kube: RealCluster, operators: Operators, runtimes: ExitStack) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await kube.create(conn(kube, "early", {"url": {"endpoint": runtime}}))
    first = await operators.start()  # created while no operator ran: this one resumes it
    await wait_for(kube, "early", "Ready", "True")
    await operators.stop(first)
    dead = f"http://127.0.0.1:{free_port()}"
    await kube.patch(API_VERSION, KIND, kube.namespace, "early", {"spec": {"source": {"url": {"endpoint": dead}}}})
    await operators.start()
    status = await wait_for(kube, "early", "Ready", "False", "Unreachable")
    assert status["observedGeneration"] == 2


async def test_kubectl_get_and_describe_as_a_platform_team_sees_them(
    kube: RealCluster, operators: Operators, runtimes: ExitStack, kubectl: Kubectl
) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await operators.start()
    await kube.create(conn(kube, "shown", {"url": {"endpoint": runtime}}))
    await kube.create(conn(kube, "broken", {"url": {"endpoint": f"http://127.0.0.1:{free_port()}"}}))
    status = await wait_for(kube, "shown", "Ready", "True")
    await wait_for(kube, "broken", "Ready", "False", "Unreachable")

    table = kubectl("get", "connectors", "--namespace", kube.namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "REASON", "SOURCE", "COMMANDS", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["shown"][1:5] == ["True", condition(status, "Ready")["reason"], "url", str(status["commandCount"])]
    assert rows["broken"][1:5] == ["False", "Unreachable", "url", "0"]
    wide = kubectl("get", "connector", "shown", "--namespace", kube.namespace, "-o", "wide").stdout
    assert "ENDPOINT" in wide and runtime in wide

    described = kubectl("describe", "connector", "broken", "--namespace", kube.namespace).stdout
    for expected in ("Kind:         Connector", "Source:", "Conditions:", "Unreachable", "Ready"):
        assert expected in described, described


async def test_ready_transitions_and_rollouts_are_events_kubectl_describe_shows(
    kube: RealCluster, operators: Operators, kubectl: Kubectl
) -> None:
    """SecretMissing -> Ready -> Unreachable: one Event each (a retried failure posts none)."""
    port = free_port()
    outage = ExitStack()
    await operators.start(discovery_interval=1)
    source = {"url": {"endpoint": f"http://127.0.0.1:{port}", "apiKeySecretRef": {"name": "ev-key", "key": "k"}}}
    await kube.create(conn(kube, "ev", source))
    await wait_for(kube, "ev", "Ready", "False", "SecretMissing")
    outage.enter_context(serve_in_thread(runtime_app(api_key="ev-key-value"), port=port))
    await kube.create(secret_in(kube, "ev-key", k="ev-key-value"))
    await wait_for(kube, "ev", "Ready", "True")
    outage.close()
    await wait_for(kube, "ev", "Ready", "False", "Unreachable")
    await asyncio.sleep(3)  # several re-discoveries of the same failure

    async def events() -> list[dict[str, Any]]:
        listed = await kube.list("v1", "Event", kube.namespace)
        ours = [e for e in listed if (e.get("source") or {}).get("component") == "connector-operator"]
        return [e for e in ours if e["involvedObject"].get("name") == "ev"]  # kopf posts its own too

    # In the order they were stored (timestamps have one-second steps: resourceVersion orders them).
    ordered = sorted(await events(), key=lambda e: int(e["metadata"]["resourceVersion"]))
    seen = [(e["type"], e["reason"]) for e in ordered]
    assert seen == [("Warning", "SecretMissing"), ("Normal", "Ready"), ("Warning", "Unreachable")]
    described = kubectl("describe", "connector", "ev", "--namespace", kube.namespace).stdout
    events_section = described[described.index("Events:") :]
    for reason in ("SecretMissing", "Ready", "Unreachable"):
        assert reason in events_section, described
    assert "connector-operator" in events_section
    assert "ev-key-value" not in described


async def test_a_workloads_creation_and_rollouts_are_events(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(secret_in(kube, "rolled", KEY="one"))
    source = {"image": {"ref": "registry.example/conn@sha256:" + "c" * 64}}
    await kube.create(conn(kube, "rolled", source, configFrom=[{"secretRef": {"name": "rolled"}}]))

    async def reasons(expected: int) -> list[str] | None:
        listed = await kube.list("v1", "Event", kube.namespace)
        found = [e["reason"] for e in listed if e["involvedObject"].get("name") == "rolled"]
        workload = [r for r in found if r in ("WorkloadCreated", "WorkloadRolledOut")]
        return workload if len(workload) >= expected else None

    assert await until(lambda: reasons(1)) == ["WorkloadCreated"]
    await kube.patch("v1", "Secret", kube.namespace, "rolled", {"data": {"KEY": base64.b64encode(b"two").decode()}})
    assert sorted(await until(lambda: reasons(2))) == ["WorkloadCreated", "WorkloadRolledOut"]
    listed = await kube.list("v1", "Event", kube.namespace)
    [rolled] = [e for e in listed if e["reason"] == "WorkloadRolledOut"]
    assert (
        rolled["message"] == "Deployment connector-rolled rolls out new pods: a referenced Secret or ConfigMap changed."
    )


async def test_reconciles_of_one_connector_at_once_take_turns(kube: RealCluster) -> None:
    # Its create handler and the initial event of a Secret it uses can reconcile a new Connector at
    # the same moment: both read "no Deployment yet" and both posted WorkloadCreated, and both
    # posted the Ready transition from the same old status.
    await kube.create(secret_in(kube, "twice", KEY="one"))
    source = {"image": {"ref": "registry.example/conn@sha256:" + "d" * 64}}
    body = await kube.create(conn(kube, "twice", source, configFrom=[{"secretRef": {"name": "twice"}}]))
    await load_kube_config()
    services = Services(kube=Kube(), http=httpx.AsyncClient(), settings=OperatorSettings(namespaces=[kube.namespace]))
    try:
        outcomes = await asyncio.gather(*(reconcile(services, body, []) for _ in range(3)), return_exceptions=True)
    finally:
        await services.http.aclose()
        await services.kube.close()
    assert [type(outcome) for outcome in outcomes] == [RetryLater] * 3  # the workload has no pod here
    listed = await kube.list("v1", "Event", kube.namespace)
    # One of each: the later reconciles read the status the first wrote, so Ready did not change again.
    assert sorted(e["reason"] for e in listed if e["involvedObject"].get("name") == "twice") == [
        "WorkloadCreated",
        "WorkloadUnavailable",
    ]
    assert len(services.turns) == 0


async def test_the_operator_metrics_count_reconciles_discoveries_and_connectors_by_reason(
    kube: RealCluster, operators: Operators, runtimes: ExitStack
) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    operator = await operators.start()
    await kube.create(conn(kube, "up", {"url": {"endpoint": runtime}}))
    await kube.create(conn(kube, "down", {"url": {"endpoint": f"http://127.0.0.1:{free_port()}"}}))
    await wait_for(kube, "up", "Ready", "True")
    await wait_for(kube, "down", "Ready", "False", "Unreachable")
    async with httpx.AsyncClient(timeout=10) as client:
        scraped = await client.get(f"http://127.0.0.1:{operator.settings.recheck_port}/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
    }
    assert samples[("connector_operator_connectors", (("ready", "True"), ("reason", "Ready")))] == 1
    assert samples[("connector_operator_connectors", (("ready", "False"), ("reason", "Unreachable")))] == 1
    assert samples[("connector_operator_reconciles_total", (("result", "ready"),))] >= 1
    assert samples[("connector_operator_reconciles_total", (("result", "retry"),))] >= 1
    assert samples[("connector_operator_discoveries_total", (("outcome", "ok"),))] >= 1
    assert samples[("connector_operator_discoveries_total", (("outcome", "Unreachable"),))] >= 1
    assert samples[("connector_operator_reconcile_duration_seconds_count", ())] >= 2


async def test_a_wrong_api_key_is_reported_and_its_rotation_followed(
    kube: RealCluster, operators: Operators, runtimes: ExitStack
) -> None:
    keyed = runtimes.enter_context(serve_in_thread(runtime_app(api_key="workload-key")))
    await operators.start()
    await kube.create(secret_in(kube, "demo-key", token="wrong-key"))
    source = {"url": {"endpoint": keyed, "apiKeySecretRef": {"name": "demo-key", "key": "token"}}}
    await kube.create(conn(kube, "keyed", source))
    status = await wait_for(kube, "keyed", "Ready", "False", "Unauthorized")
    assert "workload-key" not in str(status) and "wrong-key" not in str(status)
    # Rotating the Secret fixes it: the operator follows Secret changes through its index.
    fixed = {"data": {"token": base64.b64encode(b"workload-key").decode()}}
    await kube.patch("v1", "Secret", kube.namespace, "demo-key", fixed)
    status = await wait_for(kube, "keyed", "Ready", "True")
    assert status["commandCount"] > 0


async def test_a_recheck_request_rediscovers_one_connector_at_once(
    kube: RealCluster, operators: Operators, runtimes: ExitStack
) -> None:
    """The federated proxy's key changes while the Secret keeps the old one: nothing but the recheck
    endpoint can notice (discovery every hour, no Secret event), and it shows within seconds."""
    federated = KeyedRuntime("f1rst-fed-key")
    endpoint = runtimes.enter_context(serve_in_thread(federated))
    operator = await operators.start()
    await kube.create(secret_in(kube, "fed-key", token="f1rst-fed-key"))
    source = {"url": {"endpoint": endpoint, "apiKeySecretRef": {"name": "fed-key", "key": "token"}}}
    await kube.create(conn(kube, "fed", source))
    await wait_for(kube, "fed", "Ready", "True")
    federated.api_key = "s3cond-fed-key"

    recheck = f"http://127.0.0.1:{operator.settings.recheck_port}/v1/recheck"
    async with httpx.AsyncClient(timeout=10) as client:
        unwatched = await client.post(f"{recheck}/kube-system/fed")
        assert (unwatched.status_code, unwatched.json()) == (
            404,
            {"error": "Namespace kube-system is not watched by this operator."},
        )
        assert (await client.post(f"{recheck}/{kube.namespace}/not-there")).status_code == 202
        answer = await client.post(f"{recheck}/{kube.namespace}/fed")
        assert (answer.status_code, answer.json()) == (202, {"recheck": "scheduled"})
        status = await wait_condition(
            kube, "fed", "Ready", "False", "Unauthorized", namespace=kube.namespace, within=15
        )
        again = await client.post(f"{recheck}/{kube.namespace}/fed")
        assert (again.status_code, again.json()) == (202, {"recheck": "coalesced"})  # rate-limited
    assert "check the API key Secret" in condition(status, "Ready")["message"]
    assert "f1rst-fed-key" not in str(status) and "s3cond-fed-key" not in str(status)
    assert status["commandCount"] > 0  # the commands stay listed: their calls answer the refusal
    # The Secret rotated to the new key: the Secret's event re-discovers it, as before.
    fixed = {"data": {"token": base64.b64encode(b"s3cond-fed-key").decode()}}
    await kube.patch("v1", "Secret", kube.namespace, "fed-key", fixed)
    await wait_for(kube, "fed", "Ready", "True")


async def test_a_recheck_port_in_use_stops_the_operator_at_start_up(
    kube: RealCluster, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        operator = OperatorInThread(OperatorSettings(namespaces=[kube.namespace], recheck_port=port))
        thread = threading.Thread(target=operator.run, daemon=True)
        thread.start()
        try:  # at once, not after retries
            await eventually(
                lambda: f"cannot listen on CONNECTOR_OPERATOR_RECHECK_PORT {port}" in caplog.text, within=30
            )
        finally:
            operator.stop_flag.set()  # kopf waits for a thread's stop flag before its loop ends
            await asyncio.to_thread(thread.join, 60)
    assert not thread.is_alive() and not operator.ready_flag.is_set()
    assert type(operator.error).__name__ == "ActivityError"  # kopf's start-up failure: the operator exits
