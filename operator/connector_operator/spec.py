"""The ``Connector`` spec as typed models, and :func:`parse_spec`, which validates it.

The CRD (``charts/connector-proxy/crds/connectors.spiffworkflow.org.yaml``) rejects most invalid
specs at admission, but not every cluster runs its CEL rules (and the test emulator runs no schema
validation at all), so :func:`parse_spec` enforces the same rules again, plus semantic checks the
schema cannot express (PEP 508 requirements, URL hosts, no credentials inside URLs, image reference
grammar, requests <= limits). Error messages name the field and never echo config values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from connector_proxy.contract import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_SECONDS

SourceKind = Literal["pip", "image", "url"]

# Shared with the CRD schema (keep both in step).
CONFIG_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONNECTOR_NAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"  # noqa: S105 - a regex
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a regex
HTTP_URL_PATTERN = r"^https?://"
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
RESOURCE_NAME_PATTERN = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# URL schemes pip can fetch a ``name @ <url>`` requirement from inside the pod.
REQUIREMENT_URL_SCHEMES = frozenset({"http", "https", "git+https", "git+http"})

# The grammar of github.com/distribution/reference (without IPv6 hosts).
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(rf"^{_NAME}(?::{_TAG})?(?:@{_DIGEST})?$")

_SUFFIXES = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


class InvalidSpec(ValueError):
    """The spec cannot be reconciled; the message names the offending field(s)."""


_QUANTITY_NUMBER = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")


def parse_quantity(quantity: int | str) -> Decimal:
    """The value of a Kubernetes resource quantity (``250m`` -> 0.25, ``1Gi`` -> 1073741824, ``1e3``)."""
    if isinstance(quantity, int):
        return Decimal(quantity)
    match = _QUANTITY_NUMBER.match(quantity)
    if not re.fullmatch(QUANTITY_PATTERN, quantity) or match is None:
        raise ValueError("must be a Kubernetes quantity (e.g. 250m, 1, 1.5, 512Mi, 2Gi)")
    number, suffix = match.groups()
    if suffix in _SUFFIXES:
        return Decimal(number) * _SUFFIXES[suffix]
    return Decimal(quantity)  # a decimal exponent such as 1e3


def _check_http_url(url: str, what: str) -> str:
    """An http(s) URL with a host, no credentials and no whitespace."""
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{what} must not contain whitespace")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise ValueError(f"{what} is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{what} must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{what} must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not contain credentials (user:password@); reference a Secret instead")
    return url


class _Model(BaseModel):
    """CRD field names (camelCase) only, no unknown fields, no type coercion (like the API server)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True, frozen=True)


def _check_requirement(text: str) -> str:
    problem = _requirement_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def _check_index_url(url: str) -> str:
    return _check_http_url(url, "the index URL")


def _check_quantity(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a Kubernetes quantity: an integer or a string such as 250m or 512Mi")
    try:
        if parse_quantity(value) < 0:
            raise ValueError("must not be negative")
    except ValueError as error:
        raise ValueError(str(error)) from None
    return value


SecretName = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)]
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]
HttpUrl = Annotated[str, Field(max_length=2048, pattern=HTTP_URL_PATTERN)]
IndexUrl = Annotated[HttpUrl, AfterValidator(_check_index_url)]
PipRequirement = Annotated[
    str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z0-9]"), AfterValidator(_check_requirement)
]
# Validated as a whole by _check_quantity (one clear message instead of one per union branch).
Quantity = Annotated[int | str, BeforeValidator(_check_quantity)]


class SecretKeySelector(_Model):
    """A key of a Secret in the Connector's namespace."""

    name: SecretName
    key: SecretKey


class SecretReference(_Model):
    """A whole Secret in the Connector's namespace."""

    name: SecretName


class ConfigMapKeySelector(_Model):
    """A key of a ConfigMap in the Connector's namespace."""

    name: SecretName  # the same DNS subdomain rules
    key: SecretKey


class ConfigMapReference(_Model):
    """A whole ConfigMap in the Connector's namespace."""

    name: SecretName


class PipCredentialsRef(_Model):
    """Secret holding the username and password of ``indexUrl``."""

    name: SecretName
    username_key: SecretKey = "username"
    password_key: SecretKey = "password"  # noqa: S105 - the name of a key, not a password


class PipSource(_Model):
    requirements: list[PipRequirement] = Field(min_length=1, max_length=64)
    index_url: IndexUrl | None = None
    extra_index_urls: list[IndexUrl] = Field(default_factory=list, max_length=8)
    credentials_secret_ref: PipCredentialsRef | None = None

    @model_validator(mode="after")
    def _credentials_need_index(self) -> PipSource:
        if self.credentials_secret_ref is not None and self.index_url is None:
            raise ValueError("credentialsSecretRef applies to indexUrl, which is not set")
        return self


def _requirement_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable requirement (never echoing it: a URL may hold a token)."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        # The first line explains; the following lines would echo the input.
        return "is not a valid PEP 508 requirement: " + str(error).splitlines()[0]
    if requirement.url is not None:
        parts = urlsplit(requirement.url)
        if parts.scheme not in REQUIREMENT_URL_SCHEMES:
            allowed = ", ".join(sorted(REQUIREMENT_URL_SCHEMES))
            return f"{requirement.name}: the URL scheme must be one of {allowed}"
        if "@" in parts.netloc:
            return f"{requirement.name}: the URL must not contain credentials (user:token@); use a public URL"
        if not parts.hostname:
            return f"{requirement.name}: the URL must name a host"
    return None


ConnectorName = Annotated[str, Field(min_length=1, max_length=64, pattern=CONNECTOR_NAME_PATTERN)]


class ImageSource(_Model):
    ref: str = Field(min_length=1, max_length=1024, pattern=r"^[^\s]+$")
    port: int = Field(7004, ge=1, le=65535)
    # The connector names it serves (CONNECTOR_PROXY_ONLY_CONNECTORS of the project's runtime); empty: all.
    connectors: list[ConnectorName] = Field(default_factory=list, max_length=64)

    @field_validator("connectors")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("names a connector twice")
        return names

    @field_validator("ref")
    @classmethod
    def _reference(cls, ref: str) -> str:
        if not IMAGE_REFERENCE.match(ref):
            raise ValueError("is not a valid image reference (registry/repository[:tag][@sha256:<digest>])")
        return ref


class UrlSource(_Model):
    endpoint: str = Field(min_length=8, max_length=2048, pattern=HTTP_URL_PATTERN)
    api_key_secret_ref: SecretKeySelector | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, endpoint: str) -> str:
        _check_http_url(endpoint, "the endpoint")
        parts = urlsplit(endpoint)
        if parts.query or parts.fragment:
            raise ValueError("the endpoint must not have a query or fragment (paths are appended to it)")
        return endpoint


class Source(_Model):
    pip: PipSource | None = None
    image: ImageSource | None = None
    url: UrlSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        present = [kind for kind in ("pip", "image", "url") if getattr(self, kind) is not None]
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(f"exactly one of pip, image or url must be set (found: {found})")
        return self


class ConfigValueFrom(_Model):
    """Where a config value comes from: a Secret key (credentials) or a ConfigMap key."""

    secret_key_ref: SecretKeySelector | None = None
    config_map_key_ref: ConfigMapKeySelector | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ConfigValueFrom:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("exactly one of secretKeyRef or configMapKeyRef must be set")
        return self


class ConfigEntry(_Model):
    """One entry of the connector's config: a literal ``value`` or a Secret key (``valueFrom``)."""

    name: str = Field(min_length=1, max_length=128, pattern=CONFIG_NAME_PATTERN)
    value: str | None = Field(None, max_length=32768, repr=False)
    value_from: ConfigValueFrom | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ConfigEntry:
        if (self.value is None) == (self.value_from is None):
            raise ValueError(f"config entry {self.name}: exactly one of value or valueFrom must be set")
        return self


class ConfigFromSource(_Model):
    """A whole Secret or ConfigMap whose keys all become config entries."""

    secret_ref: SecretReference | None = None
    config_map_ref: ConfigMapReference | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ConfigFromSource:
        if (self.secret_ref is None) == (self.config_map_ref is None):
            raise ValueError("exactly one of secretRef or configMapRef must be set")
        return self


class OAuthSettings(_Model):
    """How the workload runs browser OAuth flows (its CONNECTOR_PROXY_OAUTH_* settings)."""

    redirect_allowlist: list[HttpUrl] = Field(default_factory=list, max_length=16)
    state_secret_ref: SecretKeySelector | None = None


class ResourceRequirements(_Model):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)

    @field_validator("requests", "limits")
    @classmethod
    def _resource_names(cls, values: dict[str, Quantity]) -> dict[str, Quantity]:
        for resource in values:
            if len(resource) > 253 or not re.fullmatch(RESOURCE_NAME_PATTERN, resource):
                raise ValueError(f"{resource!r} is not a valid resource name")
        return values

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourceRequirements:
        for resource, request in self.requests.items():
            if resource in self.limits and parse_quantity(request) > parse_quantity(self.limits[resource]):
                raise ValueError(f"requests.{resource} must be less than or equal to limits.{resource}")
        return self


LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"  # an optional DNS prefix
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
RESERVED_LABEL_PREFIXES = ("app.kubernetes.io/", "connectors.spiffworkflow.org/")
RESERVED_VOLUMES = frozenset({"tmp", "connectors", "callers"})  # the workload's own (manifests, callers)
RESERVED_MOUNT_PATHS = ("/tmp", "/connectors", "/etc/spiff-connector-callers")  # noqa: S108 - the workload's own
VOLUME_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Metadata = dict[
    Annotated[str, Field(max_length=317, pattern=LABEL_KEY_PATTERN)], Annotated[str, Field(max_length=4096)]
]


class Toleration(_Model):
    key: str | None = Field(None, max_length=317)
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = Field(None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(None, ge=0)


class LocalObjectReference(_Model):
    name: SecretName


class VolumeMount(_Model):
    name: str = Field(min_length=1, max_length=63, pattern=VOLUME_NAME_PATTERN)
    mount_path: str = Field(min_length=2, max_length=4096, pattern=r"^/")
    read_only: bool = True
    sub_path: str | None = Field(None, max_length=4096)


class WorkloadOptions(_Model):
    """Pod options of the workload (pip and image sources): scheduling, identity, extra volumes."""

    service_account_name: SecretName | None = None
    node_selector: dict[str, str] = Field(default_factory=dict, max_length=64)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64)
    affinity: dict[str, Any] | None = None  # core/v1 Affinity, checked by the API server
    pod_labels: Metadata = Field(default_factory=dict, max_length=64)
    pod_annotations: Metadata = Field(default_factory=dict, max_length=64)
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list, max_length=16)
    volumes: list[dict[str, Any]] = Field(default_factory=list, max_length=32)  # core/v1 Volumes
    volume_mounts: list[VolumeMount] = Field(default_factory=list, max_length=32)

    @field_validator("pod_labels")
    @classmethod
    def _own_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if key.startswith(RESERVED_LABEL_PREFIXES):
                raise ValueError(f"label {key} is the operator's own (prefixes {', '.join(RESERVED_LABEL_PREFIXES)})")
        return labels

    @field_validator("volumes")
    @classmethod
    def _volume_names(cls, volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        for volume in volumes:
            name = volume.get("name")
            if not isinstance(name, str) or not re.fullmatch(VOLUME_NAME_PATTERN, name) or len(name) > 63:
                raise ValueError("every volume needs a name (a DNS label)")
            if name in RESERVED_VOLUMES:
                raise ValueError(f"volume name {name} is the workload's own")
            if name in seen:
                raise ValueError(f"volume {name} is declared twice")
            if len(volume) != 2:
                raise ValueError(f"volume {name} must have exactly one source (configMap, secret, csi, ...)")
            seen.add(name)
        return volumes

    @model_validator(mode="after")
    def _mounts_of_declared_volumes(self) -> WorkloadOptions:
        declared = {volume["name"] for volume in self.volumes}
        for mount in self.volume_mounts:
            if mount.name not in declared:
                raise ValueError(f"volumeMounts: {mount.name} is not one of workload.volumes")
            path = mount.mount_path.rstrip("/")
            if any(path == reserved or path.startswith(reserved + "/") for reserved in RESERVED_MOUNT_PATHS):
                raise ValueError(f"volumeMounts: {mount.mount_path} is the workload's own")
        return self


class ConnectorSpec(_Model):
    """``spec`` of a Connector; defaults as in the CRD."""

    source: Source
    config: list[ConfigEntry] = Field(default_factory=list, max_length=256)
    config_from: list[ConfigFromSource] = Field(default_factory=list, max_length=32)
    replicas: int = Field(1, ge=0, le=1000)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    timeout_seconds: float = Field(DEFAULT_TIMEOUT_SECONDS, ge=1, le=3600, allow_inf_nan=False)
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=1024)
    suspend: bool = False
    oauth: OAuthSettings | None = None
    workload: WorkloadOptions = Field(default_factory=WorkloadOptions)

    @field_validator("config")
    @classmethod
    def _unique_names(cls, entries: list[ConfigEntry]) -> list[ConfigEntry]:
        seen: set[str] = set()
        for entry in entries:
            if entry.name in seen:
                raise ValueError(f"duplicate config entry name {entry.name}")
            seen.add(entry.name)
        return entries

    @model_validator(mode="after")
    def _config_needs_workload(self) -> ConnectorSpec:
        if self.source.url is not None and (
            self.config or self.config_from or self.oauth or self.workload != WorkloadOptions()
        ):
            raise ValueError(
                "config, configFrom, oauth and workload are not supported with source.url"
                " (the federated proxy has its own configuration)"
            )
        return self

    @property
    def source_kind(self) -> SourceKind:
        if self.source.pip is not None:
            return "pip"
        if self.source.image is not None:
            return "image"
        return "url"

    def referenced_secrets(self) -> frozenset[str]:
        """Every Secret (in the Connector's namespace) the spec refers to."""
        names: set[str] = set()
        if self.oauth is not None and self.oauth.state_secret_ref is not None:
            names.add(self.oauth.state_secret_ref.name)
        if self.source.pip is not None and self.source.pip.credentials_secret_ref is not None:
            names.add(self.source.pip.credentials_secret_ref.name)
        if self.source.url is not None and self.source.url.api_key_secret_ref is not None:
            names.add(self.source.url.api_key_secret_ref.name)
        for entry in self.config:
            if entry.value_from is not None and entry.value_from.secret_key_ref is not None:
                names.add(entry.value_from.secret_key_ref.name)
        names.update(item.secret_ref.name for item in self.config_from if item.secret_ref is not None)
        return frozenset(names)

    def referenced_config_maps(self) -> frozenset[str]:
        """Every ConfigMap (in the Connector's namespace) the spec takes config from."""
        names = {item.config_map_ref.name for item in self.config_from if item.config_map_ref is not None}
        for entry in self.config:
            if entry.value_from is not None and entry.value_from.config_map_key_ref is not None:
                names.add(entry.value_from.config_map_key_ref.name)
        return frozenset(names)


def _drop_nulls(value: Any) -> Any:
    """Drop null-valued object fields, as the API server prunes them from non-nullable CRD fields."""
    if isinstance(value, Mapping):
        return {key: _drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_drop_nulls(item) for item in value]
    return value


def _location(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("int", "str") or part.startswith(("function-", "constrained-")):
            continue  # pydantic's union branch markers
        else:
            path += f".{part}"
    return path


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def parse_spec(spec: Mapping[str, Any]) -> ConnectorSpec:
    """Validate a Connector ``spec`` mapping; raise :class:`InvalidSpec` naming every bad field."""
    if not isinstance(spec, Mapping):
        raise InvalidSpec("spec: must be an object")
    try:
        return ConnectorSpec.model_validate(_drop_nulls(spec))
    except ValidationError as error:
        problems: list[str] = []
        for item in error.errors(include_input=False, include_url=False, include_context=False):
            where = _location(tuple(item["loc"]))
            message = _clean(item["msg"])
            if item["type"] == "missing":
                message = "is required"
            elif item["type"] == "extra_forbidden":
                message = "is not a known field"
            line = f"{where}: {message}"
            if line not in problems:
                problems.append(line)
        raise InvalidSpec("; ".join(problems)) from None
