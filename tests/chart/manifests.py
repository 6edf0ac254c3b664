"""Offline checks of rendered manifests: Kubernetes schemas, the Connector CRD's schema, pod security;
and reading settings as a rendered container's environment gives them."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from chart.helm import CHART, KUBE_VERSION

JSON = dict[str, Any]
CRD_PATH = CHART / "crds" / "connectors.spiffworkflow.org.yaml"
RBAC_RULES_PATH = CHART / "files" / "operator-rbac-rules.yaml"
# Kinds whose schemas are not Kubernetes' own: the Prometheus Operator's (not validated offline) and ours.
NOT_BUILT_IN = {"ServiceMonitor", "PrometheusRule", "Connector"}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


# kubernetes_validate.validate() re-reads and re-parses its schema files (a multi-megabyte
# _definitions.json among them) on every call; the loader is pure, so memoize it: 6x faster, same result.
if not hasattr(kubernetes_validate.utils.schema_contents, "cache_info"):
    kubernetes_validate.utils.schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it to a request: unknown fields are errors."""
    if isinstance(schema, dict):
        result = {key: _strict(value) for key, value in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def connector_validator() -> jsonschema.Draft7Validator:
    crd = load_yaml(CRD_PATH)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(_strict(schema))


@cache
def _validate_built_in(canonical: str) -> None:
    kubernetes_validate.validate(json.loads(canonical), KUBE_VERSION, strict=True)


def validate(obj: JSON) -> str:
    """Raise on an invalid object; return how it was validated."""
    kind = obj.get("kind")
    if kind in ("ServiceMonitor", "PrometheusRule"):
        return "skipped"
    if kind == "Connector":
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in connector_validator().iter_errors(obj)]
        if errors:
            raise AssertionError(f"Connector {obj['metadata'].get('name')} breaks the CRD schema: {errors}")
        return "crd-schema"
    # Identical objects recur across the values matrix: validate each once (the schemas are slow to load).
    _validate_built_in(json.dumps(obj, sort_keys=True))
    return "kubernetes"


def name_of(obj: JSON) -> str:
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace")
    return f"{obj.get('kind')}/{namespace + '/' if namespace else ''}{meta.get('name')}"


def find(objects: list[JSON], kind: str, name: str | None = None, namespace: str | None = None) -> list[JSON]:
    return [
        obj
        for obj in objects
        if obj.get("kind") == kind
        and (name is None or obj["metadata"]["name"] == name)
        and (namespace is None or obj["metadata"].get("namespace") == namespace)
    ]


def one(objects: list[JSON], kind: str, name: str | None = None, namespace: str | None = None) -> JSON:
    found = find(objects, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[name_of(o) for o in found]}"
    return found[0]


def pod_specs(objects: list[JSON]) -> Iterator[tuple[str, JSON]]:
    """Every pod spec the objects run: bare Pods (e.g. the helm test) and workload templates."""
    for obj in objects:
        if obj.get("kind") == "Pod":
            yield name_of(obj), obj["spec"]
        elif obj.get("kind") in POD_TEMPLATE_KINDS:
            yield name_of(obj), obj["spec"]["template"]["spec"]


def containers(pod: JSON) -> list[JSON]:
    return [*pod.get("initContainers", []), *pod["containers"], *pod.get("ephemeralContainers", [])]


RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(pod: JSON) -> list[str]:
    """Breaches of the restricted Pod Security Standard (plus our own: read-only root, no service links)."""
    found: list[str] = []
    pod_context = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(f"{flag} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            found.append(f"volume {volume['name']} of type {kinds}")
    if pod_context.get("runAsUser") == 0:
        found.append("pod runs as uid 0")
    if (pod_context.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        found.append("pod seccompProfile is not RuntimeDefault")
    if pod.get("enableServiceLinks") is not False:
        found.append("enableServiceLinks is not false")
    for container in containers(pod):
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        capabilities = context.get("capabilities", {})
        if capabilities.get("drop") != ["ALL"]:
            found.append(f"{name}: capabilities are not dropped (drop: [ALL])")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot is not set")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"{name}: runs as uid 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile is {seccomp}")
        if context.get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: root file system is writable")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{name}: uses a hostPort")
        resources = container.get("resources", {})
        if not resources.get("requests") or "memory" not in resources.get("limits", {}):
            found.append(f"{name}: no resource requests or memory limit")
    return found


def env_of(container: JSON) -> dict[str, JSON]:
    """``{name: EnvVar}`` of a container; later duplicates win, as in Kubernetes."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def env_values(container: JSON, secrets: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The container's environment as the kubelet would set it: literal values, and secretKeyRefs
    resolved from ``secrets`` (``{secret name: {key: value}}``)."""
    result: dict[str, str] = {}
    for name, entry in env_of(container).items():
        if "value" in entry:
            result[name] = str(entry["value"])
            continue
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is None or secrets is None:
            raise AssertionError(f"cannot resolve env {name}: {entry}")
        result[name] = secrets[ref["name"]][ref["key"]]
    return result


def read_settings(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], factory: type[Any]) -> Any:
    """Settings read from exactly ``environment``, as the process in the pod reads them."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(("CONNECTOR_PROXY_", "CONNECTOR_OPERATOR_"))]:
            patch.delenv(name)
        for name, value in environment.items():
            patch.setenv(name, value)
        return factory()
