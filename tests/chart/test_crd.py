"""The Connector CRD manifest and the example Connectors.

The CRD is validated as a real CustomResourceDefinition (kubernetes-validate, strict). Custom resources
are checked the way the API server would: the openAPIV3Schema with ``jsonschema`` (unknown fields
rejected, as kubectl's strict field validation does), and the ``x-kubernetes-validations`` CEL rules with
a real CEL evaluator (``common-expression-language``). ``parse_spec`` must reject at least everything the
schema and the CEL rules reject, since the operator also runs where neither is enforced.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml

from chart.connector_specs import ACCEPTED, IMAGE, PIP, REJECTED_BY_CEL, REJECTED_BY_SCHEMA, URL
from chart.manifests import connector_validator
from connector_operator.spec import (
    CONFIG_NAME_PATTERN,
    QUANTITY_PATTERN,
    SECRET_KEY_PATTERN,
    SECRET_NAME_PATTERN,
    InvalidSpec,
    parse_spec,
)
from connector_proxy.contract import API_VERSION, GROUP, KIND, PLURAL, VERSION
from proxytest.paths import ROOT

CRD_PATH = ROOT / "charts" / "connector-proxy" / "crds" / "connectors.spiffworkflow.org.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("connector-*.yaml"))
K8S_VERSION = "1.33.0"

CRD: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
VERSION_ENTRY: dict[str, Any] = CRD["spec"]["versions"][0]
SCHEMA: dict[str, Any] = VERSION_ENTRY["schema"]["openAPIV3Schema"]


VALIDATOR = connector_validator()  # the schema as the API server applies it: unknown fields are errors


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(document)]


def _cel_rules(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[tuple[str, str, str, Any]]:
    """(path, rule, message, self) for every x-kubernetes-validations rule that applies to ``value``."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule["rule"], rule.get("message", ""), value
    if isinstance(value, dict):
        for key, child in schema.get("properties", {}).items():
            if key in value:
                yield from _cel_rules(child, value[key], f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _cel_rules(schema["items"], item, f"{path}[{index}]")


def cel_errors(document: dict[str, Any]) -> list[str]:
    cel = pytest.importorskip("cel")
    failures = []
    for path, rule, message, value in _cel_rules(SCHEMA, document):
        if cel.evaluate(rule, {"self": value}) is not True:
            failures.append(f"{path}: {message}")
    return failures


def connector(spec: dict[str, Any], name: str = "c1") -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in EXAMPLES for doc in yaml.safe_load_all(path.read_text()) if doc]


def example_connectors() -> list[dict[str, Any]]:
    return [doc for _, doc in example_documents() if doc["kind"] == KIND]


# --- the CRD itself -----------------------------------------------------------------------------


def test_crd_is_a_valid_custom_resource_definition() -> None:
    kubernetes_validate.validate(copy.deepcopy(CRD), K8S_VERSION, strict=True)


def test_crd_identity() -> None:
    spec = CRD["spec"]
    assert CRD["apiVersion"] == "apiextensions.k8s.io/v1"
    assert CRD["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": KIND,
        "listKind": f"{KIND}List",
        "plural": PLURAL,
        "singular": "connector",
        "shortNames": ["conn"],
        "categories": ["spiff"],
    }
    assert [v["name"] for v in spec["versions"]] == [VERSION]
    assert VERSION_ENTRY["served"] is True and VERSION_ENTRY["storage"] is True
    assert VERSION_ENTRY["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in VERSION_ENTRY["additionalPrinterColumns"]}
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Source"]["jsonPath"] == ".status.sourceKind"
    assert (columns["Commands"]["jsonPath"], columns["Commands"]["type"]) == (".status.commandCount", "integer")
    assert (columns["Age"]["jsonPath"], columns["Age"]["type"]) == (".metadata.creationTimestamp", "date")
    names = [c["name"] for c in VERSION_ENTRY["additionalPrinterColumns"] if c.get("priority", 0) == 0]
    assert names == ["Ready", "Reason", "Source", "Commands", "Age"]


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{key}")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural_and_documented() -> None:
    # An API server refuses anything but the type on the root metadata (a description included).
    assert SCHEMA["properties"]["metadata"] == {"type": "object"}
    for path, node in _nodes(SCHEMA):
        if path in (".apiVersion", ".kind", ".metadata"):
            continue
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert node.get("description"), f"{path} has no description"
        if node.get("type") == "object" and path not in ("", ".metadata"):
            assert (
                "properties" in node
                or "additionalProperties" in node
                or node.get("x-kubernetes-preserve-unknown-fields")
            ), f"{path} is an object without a structure"


def test_schema_shape_and_defaults() -> None:
    spec = SCHEMA["properties"]["spec"]
    source = spec["properties"]["source"]
    assert spec["required"] == ["source"]
    assert (source["minProperties"], source["maxProperties"]) == (1, 1)
    assert set(source["properties"]) == {"pip", "image", "url"}
    pip = source["properties"]["pip"]["properties"]
    assert set(pip) == {"requirements", "indexUrl", "extraIndexUrls", "credentialsSecretRef"}
    assert pip["requirements"]["minItems"] == 1
    assert pip["credentialsSecretRef"]["properties"]["usernameKey"]["default"] == "username"
    assert pip["credentialsSecretRef"]["properties"]["passwordKey"]["default"] == "password"
    image = source["properties"]["image"]
    assert image["required"] == ["ref"]
    assert image["properties"]["port"] == {
        **image["properties"]["port"],
        "default": 7004,
        "minimum": 1,
        "maximum": 65535,
    }
    url = source["properties"]["url"]
    assert url["required"] == ["endpoint"] and url["properties"]["endpoint"]["pattern"] == "^https?://"
    assert set(url["properties"]["apiKeySecretRef"]["required"]) == {"name", "key"}
    props = spec["properties"]
    assert props["config"]["items"]["properties"]["name"]["pattern"] == CONFIG_NAME_PATTERN
    assert props["config"]["x-kubernetes-list-type"] == "map"
    assert props["config"]["x-kubernetes-list-map-keys"] == ["name"]
    config_from = props["configFrom"]["items"]
    assert set(config_from["properties"]) == {"secretRef", "configMapRef"}
    assert (config_from["minProperties"], config_from["maxProperties"]) == (1, 1)
    value_from = props["config"]["items"]["properties"]["valueFrom"]
    assert set(value_from["properties"]) == {"secretKeyRef", "configMapKeyRef"}
    assert (value_from["minProperties"], value_from["maxProperties"]) == (1, 1)
    assert (props["replicas"]["default"], props["replicas"]["minimum"]) == (1, 0)
    assert (props["timeoutSeconds"]["type"], props["timeoutSeconds"]["default"]) == ("number", 40)
    assert (props["timeoutSeconds"]["minimum"], props["timeoutSeconds"]["maximum"]) == (1, 3600)
    assert (props["concurrency"]["default"], props["concurrency"]["minimum"], props["concurrency"]["maximum"]) == (
        16,
        1,
        1024,
    )
    assert props["suspend"]["default"] is False
    for kind in ("requests", "limits"):
        quantity = props["resources"]["properties"][kind]["additionalProperties"]
        assert quantity["x-kubernetes-int-or-string"] is True and quantity["pattern"] == QUANTITY_PATTERN


def test_secret_references_share_the_operator_patterns() -> None:
    """Every Secret name and key in the schema uses the same pattern parse_spec enforces."""
    names = keys = 0
    for path, node in _nodes(SCHEMA["properties"]["spec"]):
        parent, _, field = path.rpartition(".")
        if not parent.lower().endswith(("secretref", "secretkeyref")):
            continue
        if field == "name":
            assert node["pattern"] == SECRET_NAME_PATTERN, path
            names += 1
        else:
            assert field in ("key", "usernameKey", "passwordKey"), path
            assert node["pattern"] == SECRET_KEY_PATTERN, path
            keys += 1
    assert (names, keys) == (5, 5)


def test_status_schema() -> None:
    status = SCHEMA["properties"]["status"]["properties"]
    assert set(status) >= {
        "observedGeneration",
        "conditions",
        "endpoint",
        "sourceKind",
        "commands",
        "auths",
        "commandCount",
        "catalogHash",
        "conflicts",
    }
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]
    condition = conditions["items"]["properties"]
    assert condition["status"]["enum"] == ["True", "False", "Unknown"]
    assert condition["lastTransitionTime"]["format"] == "date-time"
    assert set(condition) == {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}
    for catalog in ("commands", "auths"):
        assert status[catalog]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    assert status["conflicts"]["items"]["type"] == "string"


def test_cel_rules_are_present() -> None:
    source = SCHEMA["properties"]["spec"]["properties"]["source"]
    [rule] = source["x-kubernetes-validations"]
    assert rule["rule"] == "[has(self.pip), has(self.image), has(self.url)].filter(x, x).size() == 1"
    assert "exactly one" in rule["message"]
    [entry_rule] = SCHEMA["properties"]["spec"]["properties"]["config"]["items"]["x-kubernetes-validations"]
    assert entry_rule["rule"] == "has(self.value) != has(self.valueFrom)"


def test_status_accepts_what_the_operator_writes() -> None:
    document = connector({"source": {"url": {"endpoint": "http://p:7004"}}})
    document["status"] = {
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "message": "Serving 1 command(s).",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
                "observedGeneration": 3,
            }
        ],
        "endpoint": "http://p:7004",
        "sourceKind": "url",
        "commands": [{"id": "x/Y", "parameters": [{"id": "a", "type": "str", "required": True}], "extra": {"k": 1}}],
        "auths": [{"id": "x/OAuth", "parameters": []}],
        "commandCount": 1,
        "catalogHash": "sha256:0",
        "conflicts": ["x/Z is served by default/older"],
    }
    assert schema_errors(document) == []


# --- examples -----------------------------------------------------------------------------------


def test_one_example_per_source_kind() -> None:
    kinds = sorted(next(iter(doc["spec"]["source"])) for doc in example_connectors())
    assert kinds == ["image", "pip", "url"]
    assert [p.name for p in EXAMPLES] == ["connector-image.yaml", "connector-pip.yaml", "connector-url.yaml"]


@pytest.mark.parametrize(("filename", "document"), example_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_example_documents_are_valid(filename: str, document: dict[str, Any]) -> None:
    if document["kind"] == KIND:
        assert schema_errors(document) == []
        assert cel_errors(document) == []
        parse_spec(document["spec"])
    else:
        kubernetes_validate.validate(copy.deepcopy(document), K8S_VERSION, strict=True)


def test_examples_ship_the_secrets_and_config_maps_they_reference() -> None:
    documents = example_documents()
    for filename, document in documents:
        if document["kind"] != KIND:
            continue
        shipped = {d["metadata"]["name"] for f, d in documents if f == filename and d["kind"] == "Secret"}
        assert parse_spec(document["spec"]).referenced_secrets() <= shipped, filename
        maps = {d["metadata"]["name"] for f, d in documents if f == filename and d["kind"] == "ConfigMap"}
        assert parse_spec(document["spec"]).referenced_config_maps() <= maps, filename
        for f, secret in documents:
            if f == filename and secret["kind"] == "Secret":
                assert all(value.startswith("FAKE-") for value in secret["stringData"].values())


def test_pip_example_shows_a_git_requirement() -> None:
    text = (ROOT / "examples" / "connector-pip.yaml").read_text()
    assert " @ git+https://" in text


def test_image_example_is_pinned_by_digest() -> None:
    [image] = [d for d in example_connectors() if "image" in d["spec"]["source"]]
    assert "@sha256:" in image["spec"]["source"]["image"]["ref"]


# --- what the API server rejects, parse_spec rejects too ----------------------------------------


@pytest.mark.parametrize("spec", REJECTED_BY_SCHEMA.values(), ids=REJECTED_BY_SCHEMA.keys())
def test_schema_rejects_and_so_does_parse_spec(spec: dict[str, Any]) -> None:
    assert schema_errors(connector(spec)) != []
    with pytest.raises(InvalidSpec):
        parse_spec(spec)


@pytest.mark.parametrize("spec", REJECTED_BY_CEL.values(), ids=REJECTED_BY_CEL.keys())
def test_cel_rejects_and_so_does_parse_spec(spec: dict[str, Any]) -> None:
    assert schema_errors(connector(spec)) == []  # jsonschema alone cannot see it
    assert cel_errors(connector(spec)) != []
    with pytest.raises(InvalidSpec, match=r"exactly one of value or valueFrom|must not contain credentials"):
        parse_spec(spec)


@pytest.mark.parametrize("source", [{**PIP, **IMAGE}, {**IMAGE, **URL}, {}], ids=["pip+image", "image+url", "none"])
def test_source_cel_rule_matches_parse_spec(source: dict[str, Any]) -> None:
    """The CEL rule on spec.source, evaluated for real, agrees with parse_spec's check of it."""
    assert cel_errors(connector({"source": source})) == [f".spec.source: {_source_rule_message()}"]
    with pytest.raises(InvalidSpec, match=r"spec\.source: exactly one of pip, image or url"):
        parse_spec({"source": source})


def _source_rule_message() -> str:
    message: str = SCHEMA["properties"]["spec"]["properties"]["source"]["x-kubernetes-validations"][0]["message"]
    return message


@pytest.mark.parametrize("spec", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_valid_specs_pass_everywhere(spec: dict[str, Any]) -> None:
    assert schema_errors(connector(spec)) == []
    assert cel_errors(connector(spec)) == []
    parse_spec(spec)
