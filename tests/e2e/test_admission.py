"""Admission by the real API server: what the CRD means to refuse is refused, with its own messages,
and every example manifest is accepted as written."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chart.connector_specs import ACCEPTED, IMAGE, REJECTED_BY_CEL, REJECTED_BY_SCHEMA
from e2e.conftest import Kubectl
from e2e.realkube import ClusterApiError, RealCluster

from connector_proxy.contract import API_VERSION, KIND
from proxytest.paths import CRD, EXAMPLES

SCHEMA: dict[str, Any] = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _cel_messages(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [rule["message"] for rule in node.get("x-kubernetes-validations", [])]
        return own + [m for value in node.values() for m in _cel_messages(value)]
    if isinstance(node, list):
        return [m for value in node for m in _cel_messages(value)]
    return []


CEL_MESSAGES = _cel_messages(SCHEMA)


async def _create(kube: RealCluster, spec: dict[str, Any], name: str = "c1") -> dict[str, Any]:
    """POST as kubectl does (strict field validation: an unknown field is an error, not dropped)."""
    body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "namespace": kube.namespace}}
    if spec:
        body["spec"] = spec
    path = kube.path(API_VERSION, KIND, kube.namespace) + "?fieldValidation=Strict"
    created: dict[str, Any] = await kube.request("POST", path, body)
    return created


async def _refusal(kube: RealCluster, spec: dict[str, Any], name: str = "c1") -> str:
    """The API server's message; 422 for an invalid value, 400 for a field the schema does not know."""
    with pytest.raises(ClusterApiError) as refused:
        await _create(kube, spec, name)
    message: str = refused.value.body["message"]
    if refused.value.status == 400:
        assert "strict decoding error: unknown field" in message, message
    else:
        assert refused.value.status == 422, refused.value.body
        assert message.startswith(f'{KIND}.{API_VERSION.split("/")[0]} "{name[:60]}') or "is invalid" in message
    return message


def _holds(stored: Any, given: Any) -> bool:
    """``stored`` has every value of ``given`` (the API server may add its defaults)."""
    if isinstance(given, dict):
        return isinstance(stored, dict) and all(k in stored and _holds(stored[k], v) for k, v in given.items())
    return bool(stored == given)


@pytest.mark.parametrize("spec", REJECTED_BY_SCHEMA.values(), ids=REJECTED_BY_SCHEMA.keys())
async def test_schema_violations_are_refused(kube: RealCluster, spec: dict[str, Any]) -> None:
    await _refusal(kube, spec)


@pytest.mark.parametrize("spec", REJECTED_BY_CEL.values(), ids=REJECTED_BY_CEL.keys())
async def test_cel_rules_are_refused_with_the_crds_message(kube: RealCluster, spec: dict[str, Any]) -> None:
    message = await _refusal(kube, spec)
    assert any(cel in message for cel in CEL_MESSAGES), message


@pytest.mark.parametrize("source", [{**IMAGE, "url": {"endpoint": "https://p.example"}}, {}], ids=["two", "none"])
async def test_source_must_be_exactly_one_kind(kube: RealCluster, source: dict[str, Any]) -> None:
    message = await _refusal(kube, {"source": source})
    rule = SCHEMA["properties"]["spec"]["properties"]["source"]["x-kubernetes-validations"][0]["message"]
    assert rule in message or "spec.source" in message, message


@pytest.mark.parametrize("name", ["Upper", "under_score", "-leading", "a" * 254])
async def test_bad_names_are_refused(kube: RealCluster, name: str) -> None:
    await _refusal(kube, {"source": IMAGE}, name=name)


@pytest.mark.parametrize("spec", ACCEPTED.values(), ids=ACCEPTED.keys())
async def test_valid_specs_are_stored_as_given(kube: RealCluster, spec: dict[str, Any]) -> None:
    created = await _create(kube, spec)
    given = {k: v for k, v in spec.items() if k != "resources"}  # quantities come back normalised
    assert _holds(created["spec"], given), created["spec"]


async def test_the_api_server_applies_the_crds_defaults(kube: RealCluster) -> None:
    created = await _create(kube, {"source": IMAGE})
    assert created["spec"]["source"]["image"]["port"] == 7004


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("connector-*.yaml")), ids=lambda p: p.name)
def test_every_example_is_accepted(kube: RealCluster, kubectl: Kubectl, example: Any) -> None:
    applied = kubectl("apply", "--namespace", kube.namespace, "-f", str(example))
    assert "connector.connectors.spiffworkflow.org/" in applied.stdout
    assert "Warning" not in applied.stderr, applied.stderr
