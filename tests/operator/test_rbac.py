"""The operator's RBAC rules file: well-formed, least privilege, and covering what the code calls."""

from __future__ import annotations

import inspect
import re
from typing import Any

import yaml

from connector_operator import kube
from proxytest.paths import CHART

RULES = CHART / "files" / "operator-rbac-rules.yaml"


def rules() -> dict[str, list[dict[str, Any]]]:
    loaded: dict[str, list[dict[str, Any]]] = yaml.safe_load(RULES.read_text())
    return loaded


def allowed(resource: str, verb: str) -> bool:
    return any(resource in rule["resources"] and verb in rule["verbs"] for scope in rules().values() for rule in scope)


def test_rules_are_well_formed_and_never_wildcards() -> None:
    for scope in ("namespaced", "cluster"):
        for rule in rules()[scope]:
            assert set(rule) == {"apiGroups", "resources", "verbs"}
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_secrets_are_read_only() -> None:
    secret_verbs = {v for rule in rules()["namespaced"] if "secrets" in rule["resources"] for v in rule["verbs"]}
    assert secret_verbs == {"get", "list", "watch"}


def test_every_api_call_of_the_kube_module_is_allowed() -> None:
    source = inspect.getsource(kube)
    calls = set(re.findall(r"self\.(?:apps|core|custom)\.(\w+)\b", source))  # called, or passed to a helper
    needed = {
        "create_namespaced_deployment": ("deployments", "create"),
        "patch_namespaced_deployment": ("deployments", "patch"),
        "read_namespaced_deployment": ("deployments", "get"),
        "delete_namespaced_deployment": ("deployments", "delete"),
        "create_namespaced_service": ("services", "create"),
        "patch_namespaced_service": ("services", "patch"),
        "read_namespaced_service": ("services", "get"),
        "delete_namespaced_service": ("services", "delete"),
        "read_namespaced_secret": ("secrets", "get"),
        "read_namespaced_config_map": ("configmaps", "get"),
        "create_namespaced_config_map": ("configmaps", "create"),
        "patch_namespaced_config_map": ("configmaps", "patch"),
        "create_namespaced_event": ("events", "create"),
        "patch_namespaced_custom_object_status": ("connectors/status", "patch"),
        "get_namespaced_custom_object": ("connectors", "get"),
        "list_namespaced_custom_object": ("connectors", "list"),
        "list_cluster_custom_object": ("connectors", "list"),
    }
    assert calls <= set(needed), f"add the new call to this table and the rules file: {calls - set(needed)}"
    for call in calls:
        resource, verb = needed[call]
        assert allowed(resource, verb), call
