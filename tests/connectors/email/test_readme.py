"""The README says what the connector has: its commands, configuration keys, parameters and error codes;
and its examples (result, BPMN service task, Kubernetes manifests) are valid."""

from __future__ import annotations

import inspect
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from chart.manifests import validate

from connector_operator.spec import parse_spec
from spiff_connector_email import connector, errors, settings

README = Path(__file__).resolve().parents[3] / "connectors" / "email" / "README.md"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _block(title: str, language: str) -> str:
    [block] = re.findall(rf"^```{language}\n(.*?)^```", _section(title), re.MULTILINE | re.DOTALL)
    return block


def _listed(title: str, pattern: str = r"[A-Za-z_]+") -> set[str]:
    return set(re.findall(rf"^\| `({pattern})` +\|", _section(title), re.MULTILINE))


def _parameters() -> set[str]:
    [spec] = connector.commands.values()
    return {name for name in inspect.signature(spec.func).parameters if name != "ctx"}


def test_the_error_code_table_lists_every_code() -> None:
    codes = {value for name, value in vars(errors).items() if name.isupper() and isinstance(value, str)}
    assert _listed("Error codes") == codes


def test_the_configuration_table_lists_every_key() -> None:
    assert _listed("Configuration") == set(settings.KEYS)


def test_the_parameter_table_lists_every_parameter() -> None:
    assert _listed("Parameters") == _parameters()


def test_the_command_table_lists_every_command() -> None:
    assert _listed("Commands", r"email/[A-Za-z]+") == {f"email/{name}" for name in connector.commands}


def test_the_result_example_has_the_result_keys() -> None:
    example = json.loads(_block("Result", "json"))
    assert set(example) == {"message_id", "accepted", "refused"}


def test_the_bpmn_example_calls_the_command_with_its_parameters() -> None:
    block = _block("In a diagram", "xml")
    task = ET.fromstring(f'<root xmlns:bpmn="{BPMN}" xmlns:spiffworkflow="{SPIFF}">{block}</root>')[0]
    operator = task.find(
        "bpmn:extensionElements/spiffworkflow:serviceTaskOperator", {"bpmn": BPMN, "spiffworkflow": SPIFF}
    )
    assert operator is not None and operator.get("id") == "email/SendEmail"
    parameters = {item.get("id"): item.get("value") for item in operator.iter(f"{{{SPIFF}}}parameter")}
    assert "to" in parameters and set(parameters) <= _parameters()
    for value in parameters.values():  # each value is a Python expression spiff-arena evaluates
        compile(str(value), "<parameter>", "eval")


def test_the_kubernetes_example_is_valid_and_uses_the_keys() -> None:
    documents = list(yaml.safe_load_all(_block("In Kubernetes", "yaml")))
    assert [document["kind"] for document in documents] == ["Secret", "Connector"]
    secret, resource = documents
    for document in documents:
        validate(document)
    spec = parse_spec(resource["spec"])
    assert spec.referenced_secrets() == {secret["metadata"]["name"]}
    assert {entry["name"] for entry in resource["spec"]["config"]} <= set(settings.KEYS)
    assert all(value.startswith("FAKE-") for value in secret["stringData"].values())
    referenced = {
        entry["valueFrom"]["secretKeyRef"]["key"] for entry in resource["spec"]["config"] if "valueFrom" in entry
    }
    assert referenced <= set(secret["stringData"])
    assert resource["spec"]["source"]["image"]["connectors"] == [connector.name]


def test_docs_errors_names_every_code() -> None:
    text = (README.parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    codes = {value for name, value in vars(errors).items() if name.isupper() and isinstance(value, str)}
    assert codes, "the error code constants"
    assert {code for code in codes if f"`{code}`" not in text} == set()
