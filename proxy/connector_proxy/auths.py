"""An authentication the registry lists in ``/v1/auths``, and where a remote one is served."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector_proxy.secret_files import MountedKey


@dataclass(frozen=True)
class AuthEntry:
    """An authentication listed in ``/v1/auths``; ``target`` is its class or SDK spec."""

    id: str
    connector: str
    entry: dict[str, Any]
    target: Any = None

    def catalog_entry(self) -> dict[str, Any]:
        return self.entry


@dataclass(frozen=True)
class RemoteAuthTarget:
    """An auth served by a connector workload (Kubernetes mode): browser requests are forwarded
    to ``endpoint`` with X-Forwarded-* headers; ``api_key`` is a url source's key, ``token`` the
    proxy's ServiceAccount token for a workload the operator runs."""

    endpoint: str
    api_key: str | MountedKey | None = field(default=None, repr=False)
    token: MountedKey | None = field(default=None, repr=False)
