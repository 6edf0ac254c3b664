"""parse_spec: the operator's own validation of a Connector spec (the CRD schema is not always enforced)."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from connector_operator.spec import ConnectorSpec, InvalidSpec, parse_quantity, parse_spec
from proxytest.paths import EXAMPLES

EXAMPLES = EXAMPLES
SECRET = "FAKE-S3CR3T-do-not-echo"
PIP = {"pip": {"requirements": ["connector-example==1.0"]}}
IMAGE = {"image": {"ref": "registry.example.com/team/connector:1.2"}}
URL = {"url": {"endpoint": "https://proxy.example.com/prefix"}}


def example_spec(kind: str) -> dict[str, Any]:
    [connector] = [
        d for d in yaml.safe_load_all((EXAMPLES / f"connector-{kind}.yaml").read_text()) if d["kind"] == "Connector"
    ]
    spec: dict[str, Any] = connector["spec"]
    return spec


def rejection(spec: Any) -> str:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(spec)
    return str(caught.value)


# --- accepted specs ----------------------------------------------------------------------------


def test_pip_example() -> None:
    spec = parse_spec(example_spec("pip"))
    assert spec.source_kind == "pip"
    assert spec.source.pip is not None
    assert spec.source.pip.requirements == [
        "connector-xero @ git+https://github.com/sartography/connector-xero.git@main"
    ]
    assert spec.referenced_secrets() == frozenset({"xero-oauth"})
    assert [entry.name for entry in spec.config] == ["XERO_CLIENT_ID", "XERO_CLIENT_SECRET", "XERO_SCOPES"]
    assert (spec.replicas, spec.timeout_seconds, spec.concurrency, spec.suspend) == (2, 40.0, 16, False)
    assert spec.resources.requests == {"cpu": "50m", "memory": "128Mi"}


def test_image_example() -> None:
    spec = parse_spec(example_spec("image"))
    assert spec.source_kind == "image"
    assert spec.source.image is not None and "@sha256:" in spec.source.image.ref
    assert spec.referenced_secrets() == frozenset({"acme-crm-credentials"})
    assert spec.referenced_config_maps() == frozenset({"acme-crm-settings"})


def test_url_example() -> None:
    spec = parse_spec(example_spec("url"))
    assert spec.source_kind == "url"
    assert spec.source.url is not None and spec.source.url.api_key_secret_ref is not None
    assert spec.source.url.api_key_secret_ref.key == "api-key"
    assert spec.referenced_secrets() == frozenset({"legacy-proxy-api-key"})


def test_defaults_match_the_crd() -> None:
    spec = parse_spec({"source": {"image": {"ref": "connector:1"}}})
    assert isinstance(spec, ConnectorSpec)
    assert spec.source.image is not None and spec.source.image.port == 7004
    assert (spec.replicas, spec.timeout_seconds, spec.concurrency, spec.suspend) == (1, 40.0, 16, False)
    assert spec.config == [] and spec.config_from == []
    assert spec.resources.requests == {} and spec.resources.limits == {}
    assert spec.referenced_secrets() == frozenset()
    creds = parse_spec(
        {
            "source": {
                "pip": {
                    "requirements": ["a"],
                    "indexUrl": "https://i.example/simple",
                    "credentialsSecretRef": {"name": "idx"},
                }
            }
        }
    )
    assert creds.source.pip is not None and creds.source.pip.credentials_secret_ref is not None
    assert creds.source.pip.credentials_secret_ref.username_key == "username"
    assert creds.source.pip.credentials_secret_ref.password_key == "password"


def test_referenced_secrets_covers_every_reference() -> None:
    spec = parse_spec(
        {
            "source": {
                "pip": {
                    "requirements": ["a"],
                    "indexUrl": "https://i.example/simple",
                    "credentialsSecretRef": {"name": "index-creds"},
                }
            },
            "config": [
                {"name": "A", "valueFrom": {"secretKeyRef": {"name": "one", "key": "k"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "one", "key": "other"}}},
                {"name": "C", "value": "literal"},
            ],
            "configFrom": [{"secretRef": {"name": "two"}}, {"secretRef": {"name": "three"}}],
        }
    )
    assert spec.referenced_secrets() == frozenset({"index-creds", "one", "two", "three"})
    assert spec.referenced_config_maps() == frozenset()


def test_referenced_config_maps_are_apart_from_the_secrets() -> None:
    spec = parse_spec(
        {
            "source": {"image": {"ref": "registry.example/c:1"}},
            "config": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "b"}}},
            ],
            "configFrom": [{"configMapRef": {"name": "defaults"}}, {"secretRef": {"name": "more-creds"}}],
        }
    )
    assert spec.referenced_config_maps() == frozenset({"settings", "defaults"})
    assert spec.referenced_secrets() == frozenset({"creds", "more-creds"})


@pytest.mark.parametrize(
    "requirement",
    [
        "connector-http",
        "connector-http==1.2.3",
        "connector_http[extra1,extra2]>=1,<2",
        "connector-http>=1; python_version >= '3.11'",
        "connector-http @ git+https://github.com/sartography/connector-http.git@main",
        "connector-http @ https://files.example.com/connector_http-1.0-py3-none-any.whl",
    ],
)
def test_pep508_requirements_accepted(requirement: str) -> None:
    parse_spec({"source": {"pip": {"requirements": [requirement]}}})


@pytest.mark.parametrize(
    "ref",
    [
        "connector",
        "connector:1.0",
        "ghcr.io/acme/connector-acme@sha256:" + "0" * 64,
        "registry.example.com:5000/team/sub/connector:v1.2.3-rc.1@sha256:" + "f" * 64,
        "localhost/c__d/e-f.g:latest",
    ],
)
def test_image_references_accepted(ref: str) -> None:
    parse_spec({"source": {"image": {"ref": ref}}})


def test_numbers_and_nulls_like_the_api_server() -> None:
    spec = parse_spec({"source": IMAGE, "timeoutSeconds": 5, "replicas": None, "concurrency": None})
    assert spec.timeout_seconds == 5.0 and isinstance(spec.timeout_seconds, float)
    assert (spec.replicas, spec.concurrency) == (1, 16)  # null fields are pruned, then defaulted


def test_accepts_any_mapping() -> None:
    spec = parse_spec(MappingProxyType({"source": MappingProxyType({"url": {"endpoint": "http://p:7004"}})}))
    assert spec.source_kind == "url"


@pytest.mark.parametrize(
    ("quantity", "value"),
    [
        ("250m", Decimal("0.25")),
        ("1Gi", Decimal(2**30)),
        ("1e3", Decimal(1000)),
        ("1.5", Decimal("1.5")),
        (2, Decimal(2)),
    ],
)
def test_parse_quantity(quantity: int | str, value: Decimal) -> None:
    assert parse_quantity(quantity) == value


# --- rejected specs: every message names the field -----------------------------------------------

REJECTED: list[tuple[str, Any, str]] = [
    ("not an object", ["source"], "spec: must be an object"),
    ("missing source", {}, "spec.source: is required"),
    ("no source kind", {"source": {}}, "spec.source: exactly one of pip, image or url must be set (found: none)"),
    (
        "two kinds",
        {"source": {**PIP, **URL}},
        "spec.source: exactly one of pip, image or url must be set (found: pip, url)",
    ),
    ("unknown kind", {"source": {"git": {}}}, "spec.source.git: is not a known field"),
    ("unknown field", {"source": IMAGE, "replica": 1}, "spec.replica: is not a known field"),
    ("snake_case", {"source": IMAGE, "timeout_seconds": 1}, "spec.timeout_seconds: is not a known field"),
    (
        "no requirements",
        {"source": {"pip": {"requirements": []}}},
        "spec.source.pip.requirements: List should have at least 1 item",
    ),
    ("missing requirements", {"source": {"pip": {}}}, "spec.source.pip.requirements: is required"),
    (
        "not PEP 508",
        {"source": {"pip": {"requirements": ["ok", "two words"]}}},
        "spec.source.pip.requirements[1]: is not a valid PEP 508 requirement",
    ),
    (
        "pip option",
        {"source": {"pip": {"requirements": ["-r/etc/passwd"]}}},
        "spec.source.pip.requirements[0]: String should match pattern",
    ),
    (
        "file URL",
        {"source": {"pip": {"requirements": ["x @ file:///etc/x"]}}},
        "spec.source.pip.requirements[0]: x: the URL scheme must be one of",
    ),
    (
        "index URL credentials",
        {"source": {"pip": {"requirements": ["a"], "indexUrl": "https://user:pw@i.example/simple"}}},
        "spec.source.pip.indexUrl: the index URL must not contain credentials",
    ),
    (
        "extra index URL without host",
        {"source": {"pip": {"requirements": ["a"], "extraIndexUrls": ["https:///simple"]}}},
        "spec.source.pip.extraIndexUrls[0]: the index URL must name a host",
    ),
    (
        "credentials without index",
        {"source": {"pip": {"requirements": ["a"], "credentialsSecretRef": {"name": "s"}}}},
        "spec.source.pip: credentialsSecretRef applies to indexUrl, which is not set",
    ),
    (
        "image ref",
        {"source": {"image": {"ref": "team/Connector:1"}}},
        "spec.source.image.ref: is not a valid image reference",
    ),
    (
        "image port",
        {"source": {"image": {"ref": "c", "port": 0}}},
        "spec.source.image.port: Input should be greater than",
    ),
    (
        "url scheme",
        {"source": {"url": {"endpoint": "ftp://p.example"}}},
        "spec.source.url.endpoint: String should match",
    ),
    (
        "url host",
        {"source": {"url": {"endpoint": "http://:7004/x"}}},
        "spec.source.url.endpoint: the endpoint must name a host",
    ),
    (
        "url query",
        {"source": {"url": {"endpoint": "http://p:7004/?a=b"}}},
        "spec.source.url.endpoint: the endpoint must not have",
    ),
    (
        "url credentials",
        {"source": {"url": {"endpoint": "http://u:p@p:7004"}}},
        "spec.source.url.endpoint: the endpoint must not contain credentials",
    ),
    (
        "api key ref",
        {"source": {"url": {"endpoint": "http://p", "apiKeySecretRef": {"name": "s"}}}},
        "spec.source.url.apiKeySecretRef.key: is required",
    ),
    (
        "url with config",
        {"source": URL, "config": [{"name": "A", "value": "v"}]},
        "spec: config, configFrom, oauth and workload are not supported with source.url",
    ),
    (
        "config name",
        {"source": IMAGE, "config": [{"name": "a-b", "value": "v"}]},
        "spec.config[0].name: String should match",
    ),
    (
        "config neither",
        {"source": IMAGE, "config": [{"name": "A"}]},
        "spec.config[0]: config entry A: exactly one of value or valueFrom must be set",
    ),
    (
        "config duplicate",
        {"source": IMAGE, "config": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
        "spec.config: duplicate config entry name A",
    ),
    (
        "config secret name",
        {"source": IMAGE, "config": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "Bad_Name", "key": "k"}}}]},
        "spec.config[0].valueFrom.secretKeyRef.name: String should match pattern",
    ),
    (
        "configFrom",
        {"source": IMAGE, "configFrom": [{"secretRef": {}}]},
        "spec.configFrom[0].secretRef.name: is required",
    ),
    (
        "configFrom neither",
        {"source": IMAGE, "configFrom": [{}]},
        "spec.configFrom[0]: exactly one of secretRef or configMapRef must be set",
    ),
    (
        "configFrom both",
        {"source": IMAGE, "configFrom": [{"secretRef": {"name": "s"}, "configMapRef": {"name": "c"}}]},
        "spec.configFrom[0]: exactly one of secretRef or configMapRef must be set",
    ),
    (
        "valueFrom both",
        {
            "source": IMAGE,
            "config": [
                {
                    "name": "A",
                    "valueFrom": {
                        "secretKeyRef": {"name": "s", "key": "k"},
                        "configMapKeyRef": {"name": "c", "key": "k"},
                    },
                }
            ],
        },
        "spec.config[0].valueFrom: exactly one of secretKeyRef or configMapKeyRef must be set",
    ),
    (
        "configMapKeyRef key",
        {"source": IMAGE, "config": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c"}}}]},
        "spec.config[0].valueFrom.configMapKeyRef.key: is required",
    ),
    ("replicas", {"source": IMAGE, "replicas": -1}, "spec.replicas: Input should be greater than or equal to 0"),
    ("replicas type", {"source": IMAGE, "replicas": "1"}, "spec.replicas: Input should be a valid integer"),
    ("replicas bool", {"source": IMAGE, "replicas": True}, "spec.replicas: Input should be a valid integer"),
    (
        "timeout",
        {"source": IMAGE, "timeoutSeconds": 3601},
        "spec.timeoutSeconds: Input should be less than or equal to 3600",
    ),
    (
        "timeout nan",
        {"source": IMAGE, "timeoutSeconds": float("nan")},
        "spec.timeoutSeconds: Input should be a finite number",
    ),
    (
        "concurrency",
        {"source": IMAGE, "concurrency": 1025},
        "spec.concurrency: Input should be less than or equal to 1024",
    ),
    ("suspend", {"source": IMAGE, "suspend": "yes"}, "spec.suspend: Input should be a valid boolean"),
    (
        "quantity",
        {"source": IMAGE, "resources": {"limits": {"memory": "lots"}}},
        "spec.resources.limits.memory: must be a Kubernetes",
    ),
    (
        "quantity type",
        {"source": IMAGE, "resources": {"limits": {"cpu": 1.5}}},
        "spec.resources.limits.cpu: must be a Kubernetes",
    ),
    (
        "negative",
        {"source": IMAGE, "resources": {"requests": {"cpu": "-1"}}},
        "spec.resources.requests.cpu: must not be negative",
    ),
    (
        "request above limit",
        {"source": IMAGE, "resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}},
        "spec.resources: requests.memory must be less than or equal to limits.memory",
    ),
    (
        "resource name",
        {"source": IMAGE, "resources": {"requests": {"cpu power": "1"}}},
        "spec.resources.requests: 'cpu power' is not a valid resource name",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), [(s, e) for _, s, e in REJECTED], ids=[i for i, _, _ in REJECTED])
def test_rejected_with_a_precise_message(spec: Any, expected: str) -> None:
    assert expected in rejection(spec)


def test_every_problem_is_reported_at_once() -> None:
    message = rejection({"source": IMAGE, "replicas": -1, "concurrency": 0, "suspend": 1})
    assert "spec.replicas:" in message and "spec.concurrency:" in message and "spec.suspend:" in message


@pytest.mark.parametrize(
    "spec",
    [
        {
            "source": IMAGE,
            "config": [{"name": "A", "value": SECRET, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        },
        {"source": IMAGE, "config": [{"name": "A", "value": SECRET * 2000}]},
        {"source": IMAGE, "config": [{"name": SECRET, "value": SECRET}]},
        {"source": IMAGE, "config": [{"name": "A", "value": SECRET}, {"name": "A", "value": SECRET}]},
        {"source": URL, "config": [{"name": "A", "value": SECRET}]},
        {"source": IMAGE, "config": [{"name": "A", "value": SECRET, "extra": SECRET}], "replicas": SECRET},
        {"source": {"pip": {"requirements": [f"x @ git+https://user:{SECRET}@github.com/o/x.git"]}}},
        {"source": {"pip": {"requirements": [f"x @ https://h.example/{SECRET}/ bad"]}}},
        {"source": {"pip": {"requirements": ["a"], "indexUrl": f"https://user:{SECRET}@i.example/simple"}}},
        {"source": {"url": {"endpoint": f"https://user:{SECRET}@p.example"}}},
    ],
)
def test_messages_never_echo_values(spec: dict[str, Any]) -> None:
    message = rejection(spec)
    assert SECRET not in message
    assert "FAKE" not in message


def test_invalid_spec_is_a_value_error() -> None:
    assert issubclass(InvalidSpec, ValueError)


def test_oauth_settings_are_for_workloads_only() -> None:
    oauth = {"redirectAllowlist": ["https://spiff.example.com/"], "stateSecretRef": {"name": "s", "key": "k"}}
    parsed = parse_spec({"source": {"image": {"ref": "c:1"}}, "oauth": oauth})
    assert parsed.oauth is not None and parsed.oauth.redirect_allowlist == ["https://spiff.example.com/"]
    with pytest.raises(InvalidSpec, match="oauth"):
        parse_spec({"source": {"url": {"endpoint": "http://proxy.example:7004"}}, "oauth": oauth})
    with pytest.raises(InvalidSpec, match="redirectAllowlist"):
        parse_spec({"source": {"image": {"ref": "c:1"}}, "oauth": {"redirectAllowlist": ["ftp://x"]}})
