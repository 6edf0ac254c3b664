"""Settings, read once from the environment (prefix ``CONNECTOR_PROXY_``)."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from connector_proxy.contract import CONFIG_ENV_PREFIX
from connector_proxy.url_prefixes import allowlist_problems

ENV_PREFIX = "CONNECTOR_PROXY_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CONFIG_KEY_PREFIX = CONFIG_ENV_PREFIX


def split_list(value: object) -> object:
    """A list setting from the environment: a JSON list, or comma-separated words."""
    if isinstance(value, str):
        if value.strip().startswith("["):
            return orjson.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def namespace_names(value: list[str]) -> list[str]:
    """Exact Kubernetes namespace names (DNS-1123 labels); patterns are refused with an explanation."""
    for name in value:
        if not _NAMESPACE.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a namespace name (lower-case letters, digits and '-', at most 63); "
                "patterns are not supported: list the namespaces, or leave the setting empty"
            )
    return value


class ConfigEntriesSource(PydanticBaseSettingsSource):
    """Collects ``CONNECTOR_PROXY_CONFIG__<KEY>=value`` variables into ``config``.

    Keys keep their case, so ``CONNECTOR_PROXY_CONFIG__XERO_CLIENT_ID`` reaches
    connectors as ``config["XERO_CLIENT_ID"]``. These entries override keys of
    the same name from ``CONNECTOR_PROXY_CONFIG`` / ``CONNECTOR_PROXY_CONFIG_FILE``.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        entries = {
            name[len(CONFIG_KEY_PREFIX) :]: value
            for name, value in os.environ.items()
            if name.startswith(CONFIG_KEY_PREFIX) and len(name) > len(CONFIG_KEY_PREFIX)
        }
        return {"config_entries": entries} if entries else {}


class Settings(BaseSettings):
    """Every setting of ``connector-proxy serve``; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = Field("0.0.0.0", description="Interface to listen on.")  # noqa: S104 - a server
    port: int = Field(7004, ge=1, le=65535, description="TCP port (7004 is spiff-arena's default proxy URL).")
    api_key: SecretStr | None = Field(
        None, description="When set, /v1/commands, /v1/auths and /v1/do require header Spiff-Connector-Proxy-Api-Key."
    )
    callers_file: Path | None = Field(
        None,
        description="A caller policy (JSON: issuer, audience, subjects, keys): every request but the probes must "
        "carry the ServiceAccount token of one of those subjects (connector workloads).",
    )
    workload_token_file: Path | None = Field(
        None,
        description="Kubernetes mode: a ServiceAccount token file (projected, audience-bound) sent as a bearer "
        "token to the workloads the operator runs, which check it (callers_file).",
    )
    command_timeout: float = Field(
        40.0, gt=0, le=3600, description="Seconds a command may run before the proxy answers 504 command_timeout."
    )
    max_request_bytes: int = Field(
        100 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest /v1/do request body accepted (bytes); larger ones get 413 request_too_large.",
    )
    max_body_memory_bytes: int = Field(
        100 * 1024 * 1024,
        ge=1024,
        le=16 * 1024**3,
        description="Request bodies one worker holds at once (bytes, summed over concurrent /v1/do requests); "
        "a request that does not fit waits, then gets 503 proxy_busy. A request alone always fits.",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=4096,
        le=16 * 1024 * 1024,
        description="Largest request head (request line and headers, bytes); a larger one gets 431 and the "
        "connection is closed.",
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a connection may take to send a request's head (from connecting, or from the "
        "request's first byte); then it is closed.",
    )
    body_wait_seconds: float = Field(
        10.0, ge=0, le=300, description="Seconds a /v1/do request waits for room in max_body_memory_bytes."
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve GET /metrics on this port only (the proxy listens on both); unset: on the main port.",
    )
    path_prefix: str = Field(
        "",
        pattern=r"^(/[A-Za-z0-9._~%!$&'()*+,;=:@-]+)*$",
        description="A path prefix the proxy is served under (e.g. /connector-proxy behind an ingress path): "
        "removed from every request path. Runs of slashes (a proxy URL ending in /) are collapsed in any case.",
    )
    gc_freeze: bool = Field(
        True,
        description="After start-up, move every object built so far out of the garbage collector's reach "
        "(gc.freeze): full collections then skip the registry and the imported modules, and no longer pause "
        "the event loop for tens to hundreds of milliseconds.",
    )
    thread_pool_size: int = Field(
        32,
        ge=1,
        le=1024,
        description="Threads for synchronous SDK commands (and community ones with isolation=thread).",
    )
    isolation: Literal["process", "thread"] = Field(
        "process",
        description="Where synchronous community commands run: process (worker processes; a crash or hang fails "
        "only that call, answered command_crashed or command_timeout) or thread (in the proxy's process, faster, "
        "unguarded).",
    )
    isolated_workers: int = Field(
        4,
        ge=1,
        le=256,
        description="Worker processes for synchronous community commands (isolation=process), per proxy worker: "
        "at most this many run at once, others wait. Started on the first such call.",
    )
    config: dict[str, Any] = Field(
        default_factory=dict, repr=False, description="JSON object handed to connectors as their config mapping."
    )
    config_file: Path | None = Field(None, description="JSON file with more config entries (merged under `config`).")
    config_entries: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)
    connector_paths: list[Path] = Field(
        default_factory=list, description="Extra directories searched for connector packages (JSON list)."
    )
    connector_paths_only: bool = Field(
        False,
        description="Load only the connector packages found in CONNECTOR_PROXY_CONNECTOR_PATHS, not those installed "
        "beside the proxy (a pip Connector's workload serves its own packages, not the image's bundled ones).",
    )
    embedded: bool | None = Field(
        None,
        description="Load installed connector packages in process. Default: on, except in Kubernetes mode "
        "(set true there to serve both).",
    )
    kubernetes: bool = Field(
        False, description="Kubernetes mode: follow Connector resources and route to their workloads."
    )
    tracing: bool = Field(
        False,
        description="Export an OpenTelemetry span per /v1/do call over OTLP/HTTP (configured by the OTEL_* "
        "variables, e.g. OTEL_EXPORTER_OTLP_ENDPOINT). Trace context is passed on either way.",
    )
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Kubernetes mode: namespaces whose Connectors are served (comma-separated or JSON list); "
        "empty means the proxy's own namespace when it runs in a pod, else all namespaces.",
    )
    all_namespaces: bool = Field(False, description="Kubernetes mode: serve Connectors of every namespace.")
    secrets_dir: Path | None = Field(
        None,
        description="Kubernetes mode: directory with mounted Secrets (<dir>/<secret>/<key>) holding API keys of "
        "url-sourced Connectors; the proxy itself never reads Secrets through the API.",
    )
    forward_timeout_margin: float = Field(
        5.0, ge=0, le=60, description="Seconds added to a Connector's timeoutSeconds when forwarding to it."
    )
    operator_url: str | None = Field(
        None,
        pattern=r"^(https?://[^/?#\s]+(/[^?#\s]*)?)?$",
        description="Kubernetes mode: base URL of the operator's recheck endpoint (http://<service>.<ns>.svc:8081); "
        "when a url-sourced Connector's proxy answers a forwarded call 401 or 403, the proxy asks the operator "
        "to re-discover that Connector now. Unset or empty: no request (the refusal is still logged and counted).",
    )
    public_url: str | None = Field(
        None,
        description="The proxy's public base URL (OAuth callbacks); default: from the request and its "
        "X-Forwarded-* headers.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Addresses or networks (comma-separated or JSON list; * is any) whose Host and X-Forwarded-* "
        "headers give the proxy's public URL when CONNECTOR_PROXY_PUBLIC_URL is unset (OAuth callbacks).",
    )
    oauth_redirect_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="URL prefixes an OAuth flow may send the browser back to (spiff-arena's backend URL).",
    )
    oauth_state_secret: SecretStr | None = Field(
        None, description="Key signing OAuth state; the same on every replica. Required for OAuth flows."
    )
    oauth_state_ttl: int = Field(600, ge=30, le=3600, description="Seconds an OAuth flow may take.")
    oauth_bind_browser: bool = Field(
        True,
        description="Finish an OAuth flow only in the browser that started it (a cookie set at the start); "
        "turn off only when the browser reaches the start and the callback on different hosts.",
    )
    disabled_connectors: list[str] = Field(
        default_factory=list, description="Connector names to leave out of the registry (JSON list)."
    )
    only_connectors: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Connector names (comma-separated or JSON list) to load, every other one left out: what one "
        "image-sourced Connector of an image holding several connectors serves. Empty: all.",
    )
    prefer_community: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Connector names (comma-separated or JSON list) whose community connector_<name> package, when "
        "installed, serves them instead of the first-party package of the same name (e.g. http).",
    )
    log_level: str = Field("INFO", description="Python log level: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).")
    log_format: str = Field("json", pattern="^(json|text)$", description="json (one object per line) or text.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes serving requests (each loads the connectors).")
    reload_packages: bool = Field(
        True,
        description="Embedded mode: when connector packages are installed, upgraded or removed, start new workers "
        "and stop the old ones gracefully (no request is dropped). SIGHUP does the same at any time.",
    )
    package_scan_interval: float = Field(
        1.0, ge=0.1, le=300, description="Seconds between two scans of the installed packages (reload_packages)."
    )

    @field_validator(
        "namespaces",
        "oauth_redirect_allowlist",
        "only_connectors",
        "prefer_community",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        return split_list(value)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("namespaces")
    @classmethod
    def _namespace_names(cls, value: list[str]) -> list[str]:
        return namespace_names(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network (or *)") from None
        return value

    @field_validator("oauth_redirect_allowlist")
    @classmethod
    def _redirect_prefixes(cls, value: list[str]) -> list[str]:
        bad = allowlist_problems(value)
        if bad:
            positions = ", ".join(str(i + 1) for i in bad)
            raise ValueError(
                f"entry {positions} is not an http(s) URL prefix without query, "
                "like https://spiff.example.com/api/v1.0/authentication_callback"
            )
        return value

    @property
    def embedded_enabled(self) -> bool:
        return self.embedded if self.embedded is not None else not self.kubernetes

    @field_validator("api_key")
    @classmethod
    def _api_key_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("CONNECTOR_PROXY_API_KEY is set but empty; unset it or give a non-empty key")
        return value

    @model_validator(mode="after")
    def _metrics_port_is_another_port(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("CONNECTOR_PROXY_METRICS_PORT must differ from CONNECTOR_PROXY_PORT")
        return self

    @model_validator(mode="after")
    def _check_config_file(self) -> Settings:
        if self.config_file is not None and not self.config_file.is_file():
            raise ValueError(f"CONNECTOR_PROXY_CONFIG_FILE {self.config_file} is not a readable file")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, ConfigEntriesSource(settings_cls), dotenv_settings, file_secret_settings)

    def connector_config(self) -> dict[str, Any]:
        """The mapping connectors receive as ``config``: file, then JSON, then single entries."""
        merged: dict[str, Any] = {}
        if self.config_file is not None:
            loaded = orjson.loads(self.config_file.read_bytes())
            if not isinstance(loaded, dict):
                raise ValueError(f"CONNECTOR_PROXY_CONFIG_FILE {self.config_file} must hold a JSON object")
            merged.update(loaded)
        merged.update(self.config)
        merged.update(self.config_entries)
        return merged
