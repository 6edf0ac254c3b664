"""Pure builders of the objects a Connector owns (no I/O): Deployment, Service, names, labels.

Every string that comes from the spec and lands in ``command``/``args``/``env[].value`` is escaped
for Kubernetes' ``$(VAR)`` expansion, so a literal value is never expanded or altered; the only
expansions are the ones these builders write themselves (index credentials from a Secret).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from connector_operator.callers import MOUNT_DIR, POLICY_KEY, VOLUME_NAME, callers_volume
from connector_operator.events import TEMPLATE_HASH_ANNOTATION, template_hash
from connector_operator.settings import OperatorSettings
from connector_operator.spec import ConfigFromSource, ConnectorSpec, PipSource, WorkloadOptions
from connector_proxy.catalog_map import CATALOG_KEY, CATALOG_LABEL, HASH_ANNOTATION, catalog_map_name
from connector_proxy.contract import API_VERSION, CONFIG_ENV_PREFIX, CONNECTOR_ANNOTATION, GROUP, KIND

SERVICE_PORT = 7004
PORT_NAME = "http"
CONTAINER_NAME = "connector"
INIT_CONTAINER_NAME = "install"
RUN_AS = 10001
SITE_DIR = "/connectors/site"
# What the runtime image provides to the init container (see the Dockerfile).
RUNTIME_WHEELS_DIR = "/opt/connector-runtime/wheels"
RUNTIME_CONSTRAINTS = "/opt/connector-runtime/constraints.txt"
SECRETS_HASH_ANNOTATION = f"{GROUP}/secrets-hash"
LIVENESS_PATH = "/v1/liveness"
INDEX_USERNAME_ENV = "PIP_INDEX_USERNAME"
INDEX_PASSWORD_ENV = "PIP_INDEX_PASSWORD"  # noqa: S105 - the name of a variable

_MAX_NAME = 63
_HASH_LENGTH = 8
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def workload_name(connector_name: str) -> str:
    """``connector-<name>``: a DNS-1123 label (valid Deployment and Service name) of at most 63 chars.

    Names that had to be changed (too long, or holding dots) get a hash suffix of the original
    name, so two Connectors never share a workload.
    """
    candidate = f"connector-{connector_name}"
    safe = re.sub(r"[^a-z0-9-]", "-", candidate.lower())
    if safe == candidate and len(safe) <= _MAX_NAME:
        return safe
    prefix = safe[: _MAX_NAME - _HASH_LENGTH - 1].rstrip("-")
    return f"{prefix}-{_short_hash(connector_name)}"


def _label_value(value: str) -> str:
    """``value`` when it is a valid label value, else a truncated form with a hash suffix."""
    if len(value) <= _MAX_NAME and _LABEL_VALUE.match(value):
        return value
    prefix = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[: _MAX_NAME - _HASH_LENGTH - 1].strip("-_.")
    return f"{prefix}-{_short_hash(value)}" if prefix else _short_hash(value)


def selector_labels(name: str) -> dict[str, str]:
    """The labels the Deployment selects its pods by and the Service routes to (immutable)."""
    return {
        "app.kubernetes.io/name": "connector",
        "app.kubernetes.io/instance": _label_value(name),
        "app.kubernetes.io/component": "connector-workload",
    }


def labels(name: str) -> dict[str, str]:
    """The recommended ``app.kubernetes.io/*`` labels of everything owned by Connector ``name``."""
    return {
        **selector_labels(name),
        "app.kubernetes.io/managed-by": "connector-operator",
        "app.kubernetes.io/part-of": "spiff-connector-proxy",
    }


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    """The controller owner reference to the Connector (garbage collection deletes the workload)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(name: str, namespace: str, uid: str) -> dict[str, Any]:
    return {
        "name": workload_name(name),
        "namespace": namespace,
        "labels": labels(name),
        "annotations": {CONNECTOR_ANNOTATION: name},
        "ownerReferences": [owner_reference(name, uid)],
    }


def workload_port(spec: ConnectorSpec, settings: OperatorSettings) -> int:
    """The port the workload container serves on (the image's own port for an image source)."""
    if spec.source.image is not None:
        return spec.source.image.port
    return settings.workload_port


def _escape(text: str) -> str:
    """Protect ``text`` from Kubernetes ``$(VAR)`` expansion (``$$`` stands for a literal ``$``)."""
    return text.replace("$", "$$")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources(spec: ConnectorSpec) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if spec.resources.requests:
        resources["requests"] = dict(spec.resources.requests)
    if spec.resources.limits:
        resources["limits"] = dict(spec.resources.limits)
    return resources


def _probe(port: int, *, period: int, failures: int, initial_delay: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": LIVENESS_PATH, "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _config_env(spec: ConnectorSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    for entry in spec.config:
        name = CONFIG_ENV_PREFIX + entry.name
        if entry.value_from is not None and entry.value_from.secret_key_ref is not None:
            ref = entry.value_from.secret_key_ref
            env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
        elif entry.value_from is not None and entry.value_from.config_map_key_ref is not None:
            cm = entry.value_from.config_map_key_ref
            env.append({"name": name, "valueFrom": {"configMapKeyRef": {"name": cm.name, "key": cm.key}}})
        else:
            env.append({"name": name, "value": _escape(entry.value or "")})
    return env


def _oauth_env(spec: ConnectorSpec) -> list[dict[str, Any]]:
    """The workload's OAuth flow settings (proxies forward /v1/auth requests to it)."""
    if spec.oauth is None:
        return []
    env: list[dict[str, Any]] = []
    if spec.oauth.redirect_allowlist:
        allowlist = json.dumps(spec.oauth.redirect_allowlist)
        env.append({"name": "CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST", "value": _escape(allowlist)})
    if spec.oauth.state_secret_ref is not None:
        ref = spec.oauth.state_secret_ref
        secret = {"secretKeyRef": {"name": ref.name, "key": ref.key}}
        env.append({"name": "CONNECTOR_PROXY_OAUTH_STATE_SECRET", "valueFrom": secret})
    return env


def _index_url_with_credentials(url: str) -> str:
    """``url`` with ``$(PIP_INDEX_USERNAME):$(PIP_INDEX_PASSWORD)@`` spliced before the host."""
    parts = urlsplit(url)
    netloc = f"$({INDEX_USERNAME_ENV}):$({INDEX_PASSWORD_ENV})@{_escape(parts.netloc)}"
    return urlunsplit((parts.scheme, netloc, _escape(parts.path), _escape(parts.query), _escape(parts.fragment)))


def _trusted_hosts(urls: list[str]) -> list[str]:
    """``--trusted-host`` for every plain-http index: pip ignores such an index otherwise (an
    in-cluster mirror often has no TLS)."""
    hosts: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        if parts.scheme == "http" and host and host not in hosts:
            hosts.append(host)
    return [arg for host in hosts for arg in ("--trusted-host", _escape(host))]


def pip_install_command(pip: PipSource) -> list[str]:
    """The init container's command: install the requirements into ``/connectors/site``.

    The runtime image's own packages come along as a local wheel directory (the SDK a connector
    may be built on is no index's to serve) and as constraints (a connector cannot pull in another
    version of a library the runtime already runs)."""
    command = [
        "python",
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--upgrade",  # the emptyDir survives a pod sandbox restart: replace, never skip
        "--target",
        SITE_DIR,
        "--find-links",
        RUNTIME_WHEELS_DIR,
        "--constraint",
        RUNTIME_CONSTRAINTS,
    ]
    if pip.index_url is not None:
        index = pip.index_url
        command += [
            "--index-url",
            _index_url_with_credentials(index) if pip.credentials_secret_ref is not None else _escape(index),
        ]
    for extra in pip.extra_index_urls:
        command += ["--extra-index-url", _escape(extra)]
    command += _trusted_hosts([u for u in (pip.index_url, *pip.extra_index_urls) if u is not None])
    command += [_escape(requirement) for requirement in pip.requirements]
    return command


def _install_container(pip: PipSource, spec: ConnectorSpec, settings: OperatorSettings) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - a private emptyDir
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    credentials = pip.credentials_secret_ref
    if credentials is not None:
        # Declared before use: $(VAR) in the command expands only variables of this container.
        env += [
            {
                "name": INDEX_USERNAME_ENV,
                "valueFrom": {"secretKeyRef": {"name": credentials.name, "key": credentials.username_key}},
            },
            {
                "name": INDEX_PASSWORD_ENV,
                "valueFrom": {"secretKeyRef": {"name": credentials.name, "key": credentials.password_key}},
            },
        ]
    return {
        "name": INIT_CONTAINER_NAME,
        "image": settings.runtime_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": pip_install_command(pip),
        "env": env,
        "resources": _resources(spec),
        "securityContext": _security_context(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
            {"name": "connectors", "mountPath": "/connectors"},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _main_container(spec: ConnectorSpec, settings: OperatorSettings) -> dict[str, Any]:
    port = workload_port(spec, settings)
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - a private emptyDir
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "CONNECTOR_PROXY_HOST", "value": "0.0.0.0"},  # noqa: S104 - the pod's own interfaces
        {"name": "CONNECTOR_PROXY_PORT", "value": str(port)},
        {"name": "CONNECTOR_PROXY_COMMAND_TIMEOUT", "value": _number(spec.timeout_seconds)},
        {"name": "CONNECTOR_PROXY_THREAD_POOL_SIZE", "value": str(spec.concurrency)},
        # The pod is the boundary already (the proxy and other connectors run elsewhere, the kubelet
        # restarts a crashed container): threads, not `concurrency` worker processes' worth of memory.
        {"name": "CONNECTOR_PROXY_ISOLATION", "value": "thread"},
        # Only the proxy and the operator reach a workload: the X-Forwarded-* headers of a forwarded
        # OAuth flow (the proxy's public URL) are the proxy's.
        {"name": "CONNECTOR_PROXY_TRUSTED_PROXIES", "value": "*"},
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - a private emptyDir
    container: dict[str, Any] = {"name": CONTAINER_NAME}
    if spec.source.pip is not None:
        container["image"] = settings.runtime_image
        container["command"] = ["connector-proxy", "serve"]
        env.append({"name": "CONNECTOR_PROXY_CONNECTOR_PATHS", "value": json.dumps([SITE_DIR])})
        # Only the Connector's own packages: the image's bundled connectors are the chart's to serve.
        env.append({"name": "CONNECTOR_PROXY_CONNECTOR_PATHS_ONLY", "value": "true"})
        mounts.append({"name": "connectors", "mountPath": "/connectors", "readOnly": True})
    elif spec.source.image is not None:
        container["image"] = spec.source.image.ref  # its own entrypoint and command
        if spec.source.image.connectors:  # one image holding several connectors serves these
            env.append({"name": "CONNECTOR_PROXY_ONLY_CONNECTORS", "value": json.dumps(spec.source.image.connectors)})
    else:
        raise ValueError("a url source has no workload")
    env += _config_env(spec) + _oauth_env(spec)
    if settings.caller_auth:  # only the proxy's and the operator's ServiceAccount tokens get in
        env.append({"name": "CONNECTOR_PROXY_CALLERS_FILE", "value": f"{MOUNT_DIR}/{POLICY_KEY}"})
        mounts.append({"name": VOLUME_NAME, "mountPath": MOUNT_DIR, "readOnly": True})
    container.update(
        {
            "imagePullPolicy": settings.image_pull_policy,
            "ports": [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}],
            "env": env,
            "resources": _resources(spec),
            "securityContext": _security_context(),
            "readinessProbe": _probe(port, period=5, failures=3, initial_delay=1),
            "livenessProbe": _probe(port, period=10, failures=6, initial_delay=10),
            "volumeMounts": mounts,
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
    )
    if spec.config_from:
        container["envFrom"] = [_env_from(item) for item in spec.config_from]
    return container


def _env_from(item: ConfigFromSource) -> dict[str, Any]:
    if item.secret_ref is not None:
        return {"prefix": CONFIG_ENV_PREFIX, "secretRef": {"name": item.secret_ref.name}}
    assert item.config_map_ref is not None  # ConfigFromSource holds exactly one
    return {"prefix": CONFIG_ENV_PREFIX, "configMapRef": {"name": item.config_map_ref.name}}


_TERMS = ("requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution")
_AFFINITY_KEYS = {"nodeAffinity": _TERMS, "podAffinity": _TERMS, "podAntiAffinity": _TERMS}
WORKLOAD_KEYS_ANNOTATION = "connectors.spiffworkflow.org/workload-keys"


def _affinity(given: dict[str, Any] | None) -> dict[str, Any]:
    """The affinity with every field a merge patch would otherwise keep written out (null when unset):
    below them everything is lists, which a merge patch replaces whole."""
    affinity: dict[str, Any] = {}
    for kind, fields in _AFFINITY_KEYS.items():
        value = (given or {}).get(kind)
        affinity[kind] = {field: value.get(field) for field in fields} if isinstance(value, dict) else None
    return affinity


def _workload_keys(options: WorkloadOptions) -> dict[str, list[str]]:
    """The map keys ``spec.workload`` writes: the next apply nulls those no longer there."""
    return {
        "labels": sorted(options.pod_labels),
        "annotations": sorted(options.pod_annotations),
        "nodeSelector": sorted(options.node_selector),
    }


def _apply_workload_options(pod: dict[str, Any], options: WorkloadOptions) -> None:
    """``spec.workload``: scheduling, identity and extra volumes. Every field is written (empty or null
    when unset), so a merge patch that drops an option from the spec removes it from the pod too; keys
    of maps (nodeSelector, pod labels and annotations) dropped since the last apply are nulled by
    :func:`without_dropped_keys`."""
    pod["serviceAccountName"] = options.service_account_name or "default"
    pod["nodeSelector"] = dict(options.node_selector)
    pod["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in options.tolerations]
    pod["affinity"] = _affinity(options.affinity)
    pod["imagePullSecrets"] = [{"name": ref.name} for ref in options.image_pull_secrets]
    pod["volumes"] = [*pod["volumes"], *(dict(volume) for volume in options.volumes)]
    mounts = [m.model_dump(by_alias=True, exclude_none=True) for m in options.volume_mounts]
    pod["containers"][0]["volumeMounts"] = [*pod["containers"][0]["volumeMounts"], *mounts]


def build_deployment(
    *,
    name: str,
    namespace: str,
    uid: str,
    spec: ConnectorSpec,
    settings: OperatorSettings,
    secrets_hash: str,
) -> dict[str, Any]:
    """The Deployment running Connector ``name``'s workload (pip and image sources)."""
    if spec.source.url is not None:
        raise ValueError("a url source has no workload")
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # Let in-flight commands finish before the pod is killed.
        "terminationGracePeriodSeconds": max(30, math.ceil(spec.timeout_seconds) + 5),
        # Always present (empty for an image source), so a merge patch from pip to image removes it.
        "initContainers": [],
        "containers": [_main_container(spec, settings)],
        "volumes": volumes,
    }
    if spec.source.pip is not None:
        pod["initContainers"] = [_install_container(spec.source.pip, spec, settings)]
        volumes.append({"name": "connectors", "emptyDir": {}})
    if settings.caller_auth:
        volumes.append(callers_volume(settings))
    _apply_workload_options(pod, spec.workload)
    template_labels = {**spec.workload.pod_labels, **labels(name)}
    template_annotations = {
        **spec.workload.pod_annotations,
        SECRETS_HASH_ANNOTATION: secrets_hash,
        "kubectl.kubernetes.io/default-container": CONTAINER_NAME,
        WORKLOAD_KEYS_ANNOTATION: json.dumps(_workload_keys(spec.workload), separators=(",", ":")),
    }
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace, uid),
        "spec": {
            "replicas": 0 if spec.suspend else spec.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(name)},
            # Keep the commands available during a rollout (e.g. after a Secret rotation).
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": template_labels, "annotations": template_annotations},
                "spec": pod,
            },
        },
    }
    deployment["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] = template_hash(deployment)
    return deployment


def without_dropped_keys(desired: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """``desired`` with null for each key ``spec.workload`` wrote into ``current`` (the Deployment as it
    is) and no longer gives: a merge patch keeps map keys it is not told to remove."""
    if current is None:
        return desired
    template = (current.get("spec") or {}).get("template") or {}
    try:
        written = json.loads(((template.get("metadata") or {}).get("annotations") or {})[WORKLOAD_KEYS_ANNOTATION])
    except (KeyError, TypeError, ValueError):
        return desired
    new_template = desired["spec"]["template"]
    targets = {
        "labels": new_template["metadata"]["labels"],
        "annotations": new_template["metadata"]["annotations"],
        "nodeSelector": new_template["spec"]["nodeSelector"],
    }
    for field, target in targets.items():
        for key in written.get(field, []):
            if isinstance(key, str) and key not in target:
                target[key] = None
    return desired


def build_service(
    *,
    name: str,
    namespace: str,
    uid: str,
    spec: ConnectorSpec,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """The ClusterIP Service in front of the workload: port 7004 (``http``) to the workload port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, uid),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": workload_port(spec, settings),
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def build_catalog_config_map(*, name: str, namespace: str, uid: str, compressed: bytes, digest: str) -> dict[str, Any]:
    """The owned ConfigMap holding the Connector's discovered catalog (``compressed``, from
    :func:`connector_proxy.catalog_map.encode_catalog`; ``digest`` its ``catalogHash``). Every Connector
    has one, url sources included; garbage collection deletes it with the Connector."""
    metadata = _metadata(name, namespace, uid)
    metadata["name"] = catalog_map_name(workload_name(name))
    metadata["labels"] = {**metadata["labels"], CATALOG_LABEL: "true"}
    metadata["annotations"] = {**metadata["annotations"], HASH_ANNOTATION: digest}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "binaryData": {CATALOG_KEY: base64.b64encode(compressed).decode("ascii")},
    }


def endpoint_for(name: str, namespace: str, spec: ConnectorSpec, settings: OperatorSettings) -> str:
    """The base URL proxies and the operator reach the connector at (no trailing slash)."""
    if spec.source.url is not None:
        return spec.source.url.endpoint.rstrip("/")
    return settings.service_endpoint.format(service=workload_name(name), namespace=namespace, port=SERVICE_PORT)


def secrets_hash(secret_data: Mapping[str, Mapping[str, str] | None]) -> str:
    """A stable sha256 (hex) over the referenced Secrets' data; a missing Secret (None) differs from ``{}``."""
    canonical = [
        [secret, None if data is None else sorted((str(key), str(value)) for key, value in data.items())]
        for secret, data in sorted(secret_data.items())
    ]
    encoded = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()
