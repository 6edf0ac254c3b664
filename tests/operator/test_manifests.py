"""The pure manifest builders: Deployments and Services a Connector owns."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest

from connector_operator.manifests import (
    build_deployment,
    build_service,
    endpoint_for,
    labels,
    owner_reference,
    secrets_hash,
    selector_labels,
    without_dropped_keys,
    workload_name,
)
from connector_operator.settings import OperatorSettings
from connector_operator.spec import ConnectorSpec, parse_spec
from connector_proxy.contract import API_VERSION, KIND
from connector_proxy.settings import Settings

K8S_VERSION = "1.33.0"
NS = "spiff"
UID = "0b5c2a4e-5f0e-4a51-9d55-6a3f1c2d9e01"
RUNTIME = "registry.example.com/connector-proxy:9.9.9"
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# The data of every Secret the specs below reference: none of it may reach a rendered object.
SECRET_DATA = {
    "index-creds": {"username": "FAKE-index-user-7f3a", "password": "FAKE-index-pass-9c1e"},
    "xero-oauth": {"client-id": "FAKE-client-id-22b4", "client-secret": "FAKE-client-secret-5d8f"},
    "more-config": {"TOKEN": "FAKE-config-token-1a6c"},
}
FAKE_VALUES = [value for data in SECRET_DATA.values() for value in data.values()]

PIP_SPEC: dict[str, Any] = {
    "source": {
        "pip": {
            "requirements": [
                "connector-xero>=0.1",
                "connector-acme @ git+https://github.com/acme/connector-acme.git@v1",
            ],
            "indexUrl": "https://pypi.internal.example/simple",
            "extraIndexUrls": ["https://pypi.org/simple"],
            "credentialsSecretRef": {"name": "index-creds"},
        }
    },
    "config": [
        {"name": "XERO_CLIENT_ID", "valueFrom": {"secretKeyRef": {"name": "xero-oauth", "key": "client-id"}}},
        {"name": "XERO_SCOPES", "value": "offline_access accounting.transactions"},
        {"name": "PRICE", "value": "costs $(HOME) or $$5"},
    ],
    "configFrom": [{"secretRef": {"name": "more-config"}}],
    "replicas": 3,
    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    "timeoutSeconds": 12.5,
    "concurrency": 8,
}
IMAGE_SPEC: dict[str, Any] = {
    "source": {"image": {"ref": "ghcr.io/acme/connector@sha256:" + "ab" * 32, "port": 8080}},
    "config": [{"name": "BASE_URL", "value": "https://api.example.com"}],
    "configFrom": [{"secretRef": {"name": "more-config"}}],
}


@pytest.fixture(scope="module")
def settings() -> OperatorSettings:
    return OperatorSettings(runtime_image=RUNTIME, image_pull_policy="Always")


def deployment_of(
    raw: dict[str, Any], settings: OperatorSettings, name: str = "xero", digest: str = "h"
) -> dict[str, Any]:
    return build_deployment(
        name=name, namespace=NS, uid=UID, spec=parse_spec(raw), settings=settings, secrets_hash=digest
    )


def containers(deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container["env"]}


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def init_container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["initContainers"]
    return container


# --- names and labels ---------------------------------------------------------------------------


def test_workload_name() -> None:
    assert workload_name("xero") == "connector-xero"
    long_a, long_b = "a" * 100 + "-one", "a" * 100 + "-two"
    assert len(workload_name(long_a)) <= 63 and DNS_LABEL.match(workload_name(long_a))
    assert workload_name(long_a) != workload_name(long_b)
    assert workload_name(long_a) == workload_name(long_a)
    assert DNS_LABEL.match(workload_name("my.connector"))
    assert workload_name("my.connector") != workload_name("my-connector")
    exact = "b" * (63 - len("connector-"))
    assert workload_name(exact) == f"connector-{exact}"


def test_labels() -> None:
    assert labels("xero") == {
        "app.kubernetes.io/name": "connector",
        "app.kubernetes.io/instance": "xero",
        "app.kubernetes.io/component": "connector-workload",
        "app.kubernetes.io/managed-by": "connector-operator",
        "app.kubernetes.io/part-of": "spiff-connector-proxy",
    }
    assert selector_labels("xero").items() <= labels("xero").items()
    for value in labels("x" * 200).values():
        assert len(value) <= 63 and LABEL_VALUE.match(value)
    assert labels("x" * 200) != labels("x" * 201)


def test_owner_reference() -> None:
    assert owner_reference("xero", UID) == {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": "xero",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


# --- Deployment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [PIP_SPEC, IMAGE_SPEC, {"source": {"image": {"ref": "c:1"}}}, {"source": {"pip": {"requirements": ["a"]}}}]
)
def test_objects_validate_strictly(raw: dict[str, Any], settings: OperatorSettings) -> None:
    spec = parse_spec(raw)
    deployment = build_deployment(name="xero", namespace=NS, uid=UID, spec=spec, settings=settings, secrets_hash="h")
    service = build_service(name="xero", namespace=NS, uid=UID, spec=spec, settings=settings)
    kubernetes_validate.validate(copy.deepcopy(deployment), K8S_VERSION, strict=True)
    kubernetes_validate.validate(copy.deepcopy(service), K8S_VERSION, strict=True)


@pytest.mark.parametrize("raw", [PIP_SPEC, IMAGE_SPEC])
def test_ownership_and_labels(raw: dict[str, Any], settings: OperatorSettings) -> None:
    spec = parse_spec(raw)
    deployment = build_deployment(name="xero", namespace=NS, uid=UID, spec=spec, settings=settings, secrets_hash="h")
    service = build_service(name="xero", namespace=NS, uid=UID, spec=spec, settings=settings)
    for obj in (deployment, service):
        meta = obj["metadata"]
        assert (meta["name"], meta["namespace"]) == ("connector-xero", NS)
        assert meta["ownerReferences"] == [owner_reference("xero", UID)]
        assert meta["labels"] == labels("xero")
    assert deployment["spec"]["selector"] == {"matchLabels": selector_labels("xero")}
    assert selector_labels("xero").items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"] == selector_labels("xero")


@pytest.mark.parametrize("raw", [PIP_SPEC, IMAGE_SPEC])
def test_restricted_pod_security(raw: dict[str, Any], settings: OperatorSettings) -> None:
    deployment = deployment_of(raw, settings)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["runAsGroup"] == 10001
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(v == {"name": v["name"], "emptyDir": {}} for v in volumes.values())
    all_containers = list(containers(deployment))
    assert len(all_containers) == (2 if "pip" in raw["source"] else 1)
    for container in all_containers:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["readOnlyRootFilesystem"] is True
        assert security["runAsNonRoot"] is True
        assert security.get("privileged", False) is False
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/tmp"] == "tmp"
        assert set(mounts.values()) <= set(volumes)
        assert env_of(container)["HOME"]["value"] == "/tmp"
        assert env_of(container)["PYTHONDONTWRITEBYTECODE"]["value"] == "1"


def test_pip_workload(settings: OperatorSettings) -> None:
    deployment = deployment_of(PIP_SPEC, settings)
    install, main = init_container(deployment), main_container(deployment)
    assert install["image"] == main["image"] == RUNTIME
    assert install["imagePullPolicy"] == main["imagePullPolicy"] == "Always"
    command = install["command"]
    assert command[:5] == ["python", "-m", "pip", "install", "--no-cache-dir"]
    assert command[command.index("--target") + 1] == "/connectors/site"
    assert command[-2:] == PIP_SPEC["source"]["pip"]["requirements"]
    assert command[command.index("--extra-index-url") + 1] == "https://pypi.org/simple"
    assert command[command.index("--index-url") + 1] == (
        "https://$(PIP_INDEX_USERNAME):$(PIP_INDEX_PASSWORD)@pypi.internal.example/simple"
    )
    install_env = env_of(install)
    assert install_env["PIP_INDEX_USERNAME"]["valueFrom"] == {
        "secretKeyRef": {"name": "index-creds", "key": "username"}
    }
    assert install_env["PIP_INDEX_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "index-creds", "key": "password"}
    }
    assert {m["mountPath"] for m in install["volumeMounts"]} == {"/tmp", "/connectors"}
    assert main["command"] == ["connector-proxy", "serve"]
    assert json.loads(env_of(main)["CONNECTOR_PROXY_CONNECTOR_PATHS"]["value"]) == ["/connectors/site"]
    connectors_mount = [m for m in main["volumeMounts"] if m["mountPath"] == "/connectors"]
    assert connectors_mount == [{"name": "connectors", "mountPath": "/connectors", "readOnly": True}]
    assert main["ports"] == [{"name": "http", "containerPort": 7004, "protocol": "TCP"}]


def test_pip_without_index_options(settings: OperatorSettings) -> None:
    install = init_container(deployment_of({"source": {"pip": {"requirements": ["connector-x"]}}}, settings))
    assert "--index-url" not in install["command"] and "--extra-index-url" not in install["command"]
    assert install["command"][-1] == "connector-x"
    assert not any(name.startswith("PIP_INDEX") for name in env_of(install))


def test_image_workload(settings: OperatorSettings) -> None:
    deployment = deployment_of(IMAGE_SPEC, settings)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["initContainers"] == []  # explicit, so a merge patch from a pip source removes the installer
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    main = main_container(deployment)
    assert main["image"] == IMAGE_SPEC["source"]["image"]["ref"]
    assert "command" not in main and "args" not in main  # the image's own entrypoint
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert env_of(main)["CONNECTOR_PROXY_PORT"]["value"] == "8080"
    assert "CONNECTOR_PROXY_CONNECTOR_PATHS" not in env_of(main)
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/v1/liveness", "port": 8080, "scheme": "HTTP"}


def test_an_image_source_naming_connectors_serves_only_those(settings: OperatorSettings) -> None:
    assert "CONNECTOR_PROXY_ONLY_CONNECTORS" not in env_of(main_container(deployment_of(IMAGE_SPEC, settings)))
    spec = {"source": {"image": {"ref": "c:1", "connectors": ["pg", "email"]}}}
    env = env_of(main_container(deployment_of(spec, settings)))
    assert json.loads(env["CONNECTOR_PROXY_ONLY_CONNECTORS"]["value"]) == ["pg", "email"]


@pytest.mark.parametrize("names", [["pg", "pg"], ["a b"], [""]])
def test_connector_names_of_an_image_source_are_checked(names: list[str]) -> None:
    with pytest.raises(ValueError, match="connectors"):
        ConnectorSpec.model_validate({"source": {"image": {"ref": "c:1", "connectors": names}}})


def test_workload_options_reach_the_pod(settings: OperatorSettings) -> None:
    from chart.connector_specs import ACCEPTED

    raw = ACCEPTED["full workload"]
    deployment = deployment_of(raw, settings)
    template = deployment["spec"]["template"]
    pod = template["spec"]
    options = raw["workload"]
    assert pod["serviceAccountName"] == "crm-connector"
    assert pod["automountServiceAccountToken"] is False  # the identity, not an API token
    assert pod["nodeSelector"] == options["nodeSelector"]
    assert pod["tolerations"] == options["tolerations"]
    required = options["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod["affinity"] == {  # every field written: null or whole lists, which a merge patch replaces
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": required,
            "preferredDuringSchedulingIgnoredDuringExecution": None,
        },
        "podAffinity": None,
        "podAntiAffinity": None,
    }
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert {"name": "ca", "configMap": {"name": "corporate-ca"}} in pod["volumes"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]  # the workload's own stay
    assert {"name": "ca", "mountPath": "/etc/corporate-ca", "readOnly": True} in main_container(deployment)[
        "volumeMounts"
    ]
    assert template["metadata"]["labels"]["team"] == "crm"
    assert template["metadata"]["labels"]["app.kubernetes.io/instance"] == deployment["metadata"]["name"].removeprefix(
        "connector-"
    )
    assert template["metadata"]["annotations"]["example.com/owner"] == "crm"
    kubernetes_validate.validate(copy.deepcopy(deployment), K8S_VERSION, strict=True)


def test_without_workload_options_every_key_is_still_written(settings: OperatorSettings) -> None:
    """So that a merge patch removing an option from the spec removes it from the pod."""
    pod = deployment_of(IMAGE_SPEC, settings)["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["nodeSelector"], pod["tolerations"]) == ("default", {}, [])
    assert pod["imagePullSecrets"] == []
    assert pod["affinity"] == {"nodeAffinity": None, "podAffinity": None, "podAntiAffinity": None}


def test_map_keys_dropped_from_the_spec_are_removed_by_the_next_patch(settings: OperatorSettings) -> None:
    before = copy.deepcopy(IMAGE_SPEC)
    before["workload"] = {"nodeSelector": {"a": "1", "b": "2"}, "podLabels": {"team": "x", "tier": "y"}}
    current = deployment_of(before, settings)
    after = copy.deepcopy(IMAGE_SPEC)
    after["workload"] = {"nodeSelector": {"a": "1"}, "podLabels": {"team": "x"}}
    patch = without_dropped_keys(deployment_of(after, settings), current)
    template = patch["spec"]["template"]
    assert template["spec"]["nodeSelector"] == {"a": "1", "b": None}
    assert template["metadata"]["labels"]["tier"] is None and template["metadata"]["labels"]["team"] == "x"
    untouched = deployment_of(after, settings)
    assert without_dropped_keys(copy.deepcopy(untouched), None) == untouched  # nothing yet: a create
    foreign = copy.deepcopy(current)
    foreign["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "now"
    patched = without_dropped_keys(deployment_of(after, settings), foreign)
    assert "kubectl.kubernetes.io/restartedAt" not in patched["spec"]["template"]["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ({"podLabels": {"app.kubernetes.io/name": "x"}}, "is the operator's own"),
        ({"volumes": [{"name": "tmp", "emptyDir": {}}]}, "volume name tmp is the workload's own"),
        ({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]}, "volume a is declared twice"),
        ({"volumes": [{"name": "a"}]}, "exactly one source"),
        ({"volumeMounts": [{"name": "b", "mountPath": "/b"}]}, "b is not one of workload.volumes"),
        (
            {"volumes": [{"name": "a", "emptyDir": {}}], "volumeMounts": [{"name": "a", "mountPath": "/tmp/x"}]},
            "/tmp/x is the workload's own",
        ),
    ],
)
def test_workload_options_the_operator_refuses(workload: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ConnectorSpec.model_validate({"source": {"image": {"ref": "c:1"}}, "workload": workload})


def test_probes_and_resources(settings: OperatorSettings) -> None:
    deployment = deployment_of(PIP_SPEC, settings)
    main = main_container(deployment)
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/v1/liveness", "port": 7004, "scheme": "HTTP"}
    for container in containers(deployment):
        assert container["resources"] == PIP_SPEC["resources"]
    assert main_container(deployment_of({"source": {"image": {"ref": "c:1"}}}, settings))["resources"] == {}


def test_proxy_settings_env(settings: OperatorSettings) -> None:
    env = env_of(main_container(deployment_of(PIP_SPEC, settings)))
    assert env["CONNECTOR_PROXY_HOST"]["value"] == "0.0.0.0"
    assert env["CONNECTOR_PROXY_PORT"]["value"] == "7004"
    assert env["CONNECTOR_PROXY_COMMAND_TIMEOUT"]["value"] == "12.5"
    assert env["CONNECTOR_PROXY_THREAD_POOL_SIZE"]["value"] == "8"
    defaults = env_of(main_container(deployment_of({"source": {"image": {"ref": "c:1"}}}, settings)))
    assert defaults["CONNECTOR_PROXY_COMMAND_TIMEOUT"]["value"] == "40"
    assert defaults["CONNECTOR_PROXY_THREAD_POOL_SIZE"]["value"] == "16"


def test_config_env_mapping(settings: OperatorSettings) -> None:
    main = main_container(deployment_of(PIP_SPEC, settings))
    env = env_of(main)
    assert env["CONNECTOR_PROXY_CONFIG__XERO_CLIENT_ID"] == {
        "name": "CONNECTOR_PROXY_CONFIG__XERO_CLIENT_ID",
        "valueFrom": {"secretKeyRef": {"name": "xero-oauth", "key": "client-id"}},
    }
    assert env["CONNECTOR_PROXY_CONFIG__XERO_SCOPES"]["value"] == "offline_access accounting.transactions"
    # "$" is doubled so that Kubernetes' $(VAR) expansion hands the literal value to the container.
    assert env["CONNECTOR_PROXY_CONFIG__PRICE"]["value"] == "costs $$(HOME) or $$$$5"
    config_names = [item["name"] for item in main["env"] if item["name"].startswith("CONNECTOR_PROXY_CONFIG__")]
    assert config_names == [f"CONNECTOR_PROXY_CONFIG__{e['name']}" for e in PIP_SPEC["config"]]
    assert main["envFrom"] == [{"prefix": "CONNECTOR_PROXY_CONFIG__", "secretRef": {"name": "more-config"}}]
    assert "envFrom" not in main_container(deployment_of({"source": {"image": {"ref": "c:1"}}}, settings))


def test_config_from_config_maps(settings: OperatorSettings) -> None:
    spec = {
        "source": {"image": {"ref": "c:1"}},
        "config": [{"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "crm-settings", "key": "region"}}}],
        "configFrom": [{"configMapRef": {"name": "crm-defaults"}}, {"secretRef": {"name": "crm-creds"}}],
    }
    main = main_container(deployment_of(spec, settings))
    assert env_of(main)["CONNECTOR_PROXY_CONFIG__REGION"]["valueFrom"] == {
        "configMapKeyRef": {"name": "crm-settings", "key": "region"}
    }
    assert main["envFrom"] == [
        {"prefix": "CONNECTOR_PROXY_CONFIG__", "configMapRef": {"name": "crm-defaults"}},
        {"prefix": "CONNECTOR_PROXY_CONFIG__", "secretRef": {"name": "crm-creds"}},
    ]


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of a container's command/args/env values."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        value,
    )


def test_the_runtime_reads_the_env_as_intended(settings: OperatorSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The literal env of the workload, after Kubernetes' expansion, configures `connector-proxy serve` as meant."""
    main = main_container(deployment_of(PIP_SPEC, settings))
    literal = {item["name"]: item["value"] for item in main["env"] if "value" in item}
    for name, value in literal.items():
        monkeypatch.setenv(name, _expand(value, literal))
    proxy = Settings()
    assert (proxy.host, proxy.port, proxy.command_timeout, proxy.thread_pool_size) == ("0.0.0.0", 7004, 12.5, 8)
    assert proxy.isolation == "thread"  # `concurrency` threads, not as many worker processes
    assert [str(path) for path in proxy.connector_paths] == ["/connectors/site"]
    assert proxy.connector_config() == {
        "XERO_SCOPES": "offline_access accounting.transactions",
        "PRICE": "costs $(HOME) or $$5",
    }


def test_no_secret_value_in_rendered_objects(settings: OperatorSettings) -> None:
    for raw in (PIP_SPEC, IMAGE_SPEC):
        spec = parse_spec(raw)
        digest = secrets_hash({name: SECRET_DATA.get(name) for name in spec.referenced_secrets()})
        rendered = json.dumps(
            [
                build_deployment(name="xero", namespace=NS, uid=UID, spec=spec, settings=settings, secrets_hash=digest),
                build_service(name="xero", namespace=NS, uid=UID, spec=spec, settings=settings),
            ]
        )
        for value in FAKE_VALUES:
            assert value not in rendered
        assert "FAKE-" not in rendered


def test_suspend_scales_to_zero(settings: OperatorSettings) -> None:
    assert deployment_of(PIP_SPEC, settings)["spec"]["replicas"] == 3
    assert deployment_of({**PIP_SPEC, "suspend": True}, settings)["spec"]["replicas"] == 0
    assert deployment_of({**IMAGE_SPEC, "replicas": 0}, settings)["spec"]["replicas"] == 0
    assert deployment_of(IMAGE_SPEC, settings)["spec"]["replicas"] == 1


def test_secrets_hash_in_the_pod_template(settings: OperatorSettings) -> None:
    one = deployment_of(PIP_SPEC, settings, digest="one")
    two = deployment_of(PIP_SPEC, settings, digest="two")
    annotations = one["spec"]["template"]["metadata"]["annotations"]
    assert annotations["connectors.spiffworkflow.org/secrets-hash"] == "one"
    # Only the pod template differs (and the digest of it the Deployment carries, for its Events): a
    # Secret change rolls the pods and nothing else.
    template_hash = "connectors.spiffworkflow.org/template-hash"
    assert one["metadata"]["annotations"][template_hash] != two["metadata"]["annotations"][template_hash]
    for deployment in (one, two):
        deployment["spec"]["template"]["metadata"]["annotations"].pop("connectors.spiffworkflow.org/secrets-hash")
        deployment["metadata"]["annotations"].pop(template_hash)
    assert one == two


def test_secrets_hash() -> None:
    base = {"a": {"k": "v", "k2": "v2"}, "b": {"x": "y"}}
    digest = secrets_hash(base)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert secrets_hash({"b": {"x": "y"}, "a": {"k2": "v2", "k": "v"}}) == digest  # order does not matter
    assert secrets_hash(copy.deepcopy(base)) == digest
    changed = [
        {"a": {"k": "v", "k2": "CHANGED"}, "b": {"x": "y"}},
        {"a": {"k": "v", "k2": "v2", "new": ""}, "b": {"x": "y"}},
        {"a": {"k": "v"}, "b": {"x": "y"}},
        {"a": {"k": "v", "k2": "v2"}, "b": None},
        {"a": {"k": "v", "k2": "v2"}, "b": {}},
        {"a": {"k": "v", "k2": "v2"}},
        {"a": {"k": "v", "k2": "v2"}, "c": {"x": "y"}},
    ]
    digests = {secrets_hash(data) for data in changed}
    assert digest not in digests and len(digests) == len(changed)
    assert secrets_hash({"s": None}) != secrets_hash({"s": {}})
    assert secrets_hash({}) == secrets_hash({})
    # no ambiguity from concatenation
    assert secrets_hash({"s": {"ab": "c"}}) != secrets_hash({"s": {"a": "bc"}})


# --- Service and endpoint -----------------------------------------------------------------------


def test_service(settings: OperatorSettings) -> None:
    service = build_service(name="acme", namespace=NS, uid=UID, spec=parse_spec(IMAGE_SPEC), settings=settings)
    assert service["spec"]["type"] == "ClusterIP"
    [port] = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"], port["protocol"]) == ("http", 7004, 8080, "TCP")
    pip_service = build_service(name="x", namespace=NS, uid=UID, spec=parse_spec(PIP_SPEC), settings=settings)
    assert pip_service["spec"]["ports"][0]["targetPort"] == settings.workload_port


def test_endpoint_for(settings: OperatorSettings) -> None:
    assert endpoint_for("xero", NS, parse_spec(PIP_SPEC), settings) == "http://connector-xero.spiff.svc:7004"
    assert endpoint_for("acme", "ns2", parse_spec(IMAGE_SPEC), settings) == "http://connector-acme.ns2.svc:7004"
    url: ConnectorSpec = parse_spec({"source": {"url": {"endpoint": "https://proxy.example.com/prefix/"}}})
    assert endpoint_for("fed", NS, url, settings) == "https://proxy.example.com/prefix"


def test_url_source_has_no_workload(settings: OperatorSettings) -> None:
    with pytest.raises(ValueError, match="url source"):
        deployment_of({"source": {"url": {"endpoint": "http://p:7004"}}}, settings)


def test_oauth_settings_reach_the_workload(settings: OperatorSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies forward /v1/auth to the workload, so it gets its own OAuth flow settings."""
    allowlist = ["https://spiff.example.com/v1.0/authentication_callback", "http://localhost:7000/"]
    raw = {
        **IMAGE_SPEC,
        "oauth": {"redirectAllowlist": allowlist, "stateSecretRef": {"name": "oauth-state", "key": "key"}},
    }
    spec = parse_spec(raw)
    assert "oauth-state" in spec.referenced_secrets()
    env = env_of(main_container(deployment_of(raw, settings)))
    assert env["CONNECTOR_PROXY_OAUTH_STATE_SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": "oauth-state", "key": "key"}
    }
    for name in list(os.environ):
        if name.startswith("CONNECTOR_PROXY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(
        "CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST",
        _expand(env["CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST"]["value"], {}),
    )
    assert Settings().oauth_redirect_allowlist == allowlist
    plain = env_of(main_container(deployment_of(IMAGE_SPEC, settings)))
    assert not any(name.startswith("CONNECTOR_PROXY_OAUTH_") for name in plain)


# --- the pip init container's command ------------------------------------------------------------


def _pip(**source: Any) -> list[str]:
    from connector_operator.manifests import pip_install_command

    spec = parse_spec({"source": {"pip": {"requirements": ["connector-x"], **source}}})
    assert spec.source.pip is not None
    return pip_install_command(spec.source.pip)


def _values(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == flag]


@pytest.mark.parametrize(
    ("source", "trusted"),
    [
        ({}, []),
        ({"indexUrl": "https://pypi.internal.example/simple"}, []),
        ({"indexUrl": "http://mirror.ns.svc:8080/simple"}, ["mirror.ns.svc:8080"]),
        (
            {"indexUrl": "http://a.example/simple", "extraIndexUrls": ["https://b.example/", "http://c.example/x"]},
            ["a.example", "c.example"],
        ),
        (
            {
                "indexUrl": "http://mirror.example/simple",
                "credentialsSecretRef": {"name": "idx", "usernameKey": "u", "passwordKey": "p"},
            },
            ["mirror.example"],
        ),
    ],
)
def test_a_plain_http_index_is_trusted_explicitly(source: dict[str, Any], trusted: list[str]) -> None:
    """pip ignores an http:// index unless its host is trusted: 'No matching distribution', exit 1."""
    assert _values(_pip(**source), "--trusted-host") == trusted


def test_the_runtime_images_own_packages_come_as_wheels_and_constraints() -> None:
    """A connector built on the SDK needs spiff-connector-sdk, which no index serves: the image's wheel."""
    from connector_operator.manifests import RUNTIME_CONSTRAINTS, RUNTIME_WHEELS_DIR

    command = _pip()
    assert _values(command, "--find-links") == [RUNTIME_WHEELS_DIR]
    assert _values(command, "--constraint") == [RUNTIME_CONSTRAINTS]
    assert command[-1] == "connector-x"


def test_a_pip_workload_serves_only_its_own_packages(settings: OperatorSettings) -> None:
    """Else every pip workload also served the image's bundled http/*V2 and claimed those ids."""
    deployment = deployment_of({"source": {"pip": {"requirements": ["c"]}}}, settings)
    main = deployment["spec"]["template"]["spec"]["containers"][0]
    assert env_of(main)["CONNECTOR_PROXY_CONNECTOR_PATHS_ONLY"]["value"] == "true"


@pytest.mark.parametrize("raw", [PIP_SPEC, IMAGE_SPEC], ids=["pip", "image"])
def test_with_caller_auth_the_workload_mounts_the_caller_policy(raw: dict[str, Any]) -> None:
    guarded = OperatorSettings(runtime_image=RUNTIME, caller_subjects="system:serviceaccount:spiff:proxy")
    deployment = deployment_of(raw, guarded)
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "callers", "configMap": {"name": "spiff-connector-callers"}} in pod["volumes"]
    main = main_container(deployment)
    env = {item["name"]: item.get("value") for item in main["env"]}
    assert env["CONNECTOR_PROXY_CALLERS_FILE"] == "/etc/spiff-connector-callers/callers.json"
    assert {"name": "callers", "mountPath": "/etc/spiff-connector-callers", "readOnly": True} in main["volumeMounts"]
    assert pod["automountServiceAccountToken"] is False  # checking a caller needs no API access


def test_without_caller_auth_nothing_is_mounted(settings: OperatorSettings) -> None:
    deployment = deployment_of(PIP_SPEC, settings)
    assert "callers" not in {v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "CONNECTOR_PROXY_CALLERS_FILE" not in {item["name"] for item in main_container(deployment)["env"]}
