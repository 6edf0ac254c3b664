"""Discovering what a connector workload serves: its ``/v1/commands`` and ``/v1/auths``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from connector_proxy.contract import API_KEY_HEADER


class _Parameter(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)
    type: str
    required: bool


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(pattern=r"^[^/]+/[^/]+$")
    parameters: list[_Parameter]


_CATALOG = TypeAdapter(list[_Entry])


class DiscoveryError(Exception):
    """Discovery failed; ``reason`` is the CamelCase condition reason, ``message`` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Catalog:
    commands: list[dict[str, Any]]
    auths: list[dict[str, Any]]


async def _fetch(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    timeout: float,  # noqa: ASYNC109 - httpx's per-request timeout, not a cancellation deadline
    *,
    optional: bool,
) -> list[dict[str, Any]]:
    try:
        response = await client.get(url, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise DiscoveryError("DiscoveryTimeout", f"GET {url} timed out") from None
    except httpx.HTTPError as error:
        raise DiscoveryError("Unreachable", f"GET {url} failed: {type(error).__name__}") from None
    if optional and response.status_code == 404:
        return []
    if response.status_code in (401, 403):
        raise DiscoveryError("Unauthorized", f"GET {url} answered {response.status_code}; check the API key Secret")
    if response.status_code != 200:
        raise DiscoveryError("DiscoveryHttpError", f"GET {url} answered {response.status_code}")
    try:
        _CATALOG.validate_json(response.content)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = "/".join(str(x) for x in first["loc"])
        raise DiscoveryError("InvalidCatalog", f"GET {url}: not a command catalog ({where}: {first['msg']})") from None
    entries: list[dict[str, Any]] = orjson.loads(response.content)
    return entries  # exactly as the workload reported them


async def discover(
    client: httpx.AsyncClient,
    endpoint: str,
    *,
    api_key: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> Catalog:
    """Fetch and check both catalogs; ``/v1/auths`` is optional in the protocol (404 → none).
    ``api_key``: a url source's key; ``token``: the operator's ServiceAccount token for workloads."""
    base = endpoint.rstrip("/")
    headers = {API_KEY_HEADER: api_key} if api_key else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    commands = await _fetch(client, f"{base}/v1/commands", headers, timeout, optional=False)
    auths = await _fetch(client, f"{base}/v1/auths", headers, timeout, optional=True)
    return Catalog(commands=commands, auths=auths)
