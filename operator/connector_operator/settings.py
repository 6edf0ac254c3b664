"""Operator settings, read once from the environment (prefix ``CONNECTOR_OPERATOR_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connector_proxy.settings import namespace_names, split_list


class OperatorSettings(BaseSettings):
    """Every setting of ``connector-proxy operator``; see docs/operator.md."""

    model_config = SettingsConfigDict(env_prefix="CONNECTOR_OPERATOR_", extra="ignore", frozen=True)

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch (exact names, JSON list or comma-separated); empty means all namespaces.",
    )
    runtime_image: str = Field(
        "ghcr.io/spiff-connector-proxy/connector-proxy:0.1.0",
        description="Image running pip-sourced connector workloads (the project's own image).",
    )
    image_pull_policy: str = Field("IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")
    discovery_interval: float = Field(60.0, gt=0, le=86400, description="Seconds between re-discoveries.")
    discovery_timeout: float = Field(10.0, gt=0, le=300, description="Seconds allowed for one discovery request.")
    withdraw_after: float | None = Field(
        None,
        gt=0,
        le=30 * 86400,
        description="Seconds a Connector may stay unreachable (or its workload unavailable) before its commands "
        "are withdrawn; unset: they are kept, answering 503 connector_unavailable, until it is deleted or suspended.",
    )
    service_endpoint: str = Field(
        "http://{service}.{namespace}.svc:{port}",
        description="How a workload's Service is addressed; {service}, {namespace} and {port} are filled in "
        "(e.g. http://{service}.{namespace}.svc.example.internal:{port} for a custom cluster domain).",
    )
    health_port: int = Field(8080, ge=1, le=65535, description="Port of the operator's /healthz liveness endpoint.")
    recheck_port: int = Field(
        8081,
        ge=1,
        le=65535,
        description="Port of the operator's POST /v1/recheck/{namespace}/{name} endpoint (proxies ask for an "
        "immediate re-discovery of a Connector whose proxy refused a forwarded call).",
    )
    workload_port: int = Field(7004, ge=1, le=65535, description="Port connector workloads listen on.")
    caller_subjects: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="ServiceAccounts (system:serviceaccount:<namespace>:<name>, JSON list or comma-separated) "
        "whose tokens workloads accept: the proxy's and the operator's. Empty: workloads accept any caller.",
    )
    caller_audience: str = Field(
        "spiff-connector-workloads", min_length=1, description="The audience of the tokens workloads accept."
    )
    callers_configmap: str = Field(
        "spiff-connector-callers",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="The ConfigMap in each workload namespace holding the caller policy workloads mount.",
    )
    workload_token_file: Path | None = Field(
        None, description="The operator's own token for that audience, sent when it discovers a workload's catalog."
    )

    @field_validator("namespaces", "caller_subjects", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)

    @field_validator("namespaces")
    @classmethod
    def _exact_names(cls, value: list[str]) -> list[str]:
        return namespace_names(value)

    @field_validator("service_endpoint")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(service="s", namespace="n", port=1)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"unknown placeholder in service endpoint template: {error}") from None
        return value

    @property
    def cluster_wide(self) -> bool:
        return not self.namespaces

    @property
    def caller_auth(self) -> bool:
        """Whether workloads check their callers' tokens."""
        return bool(self.caller_subjects)
