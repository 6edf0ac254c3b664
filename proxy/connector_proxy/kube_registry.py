"""Building the registry from Connector resources (pure: no I/O but reading mounted API keys)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from connector_proxy.commands import Command
from connector_proxy.loading import AuthEntry, RemoteAuthTarget
from connector_proxy.precedence import Claim, winners
from connector_proxy.registry import Registry
from connector_proxy.remote import Forwarder, RemoteCommand, RemoteConnector

logger = logging.getLogger("connector_proxy.kube_registry")
DEFAULT_TIMEOUT = 40.0
DEFAULT_CONCURRENCY = 16


def is_ready(obj: Mapping[str, Any]) -> bool:
    status = obj.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return ready and bool(status.get("endpoint"))


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def claim_of(obj: Mapping[str, Any]) -> Claim:
    meta = obj.get("metadata") or {}
    commands = (obj.get("status") or {}).get("commands") or []
    ids = frozenset(str(c["id"]) for c in commands if isinstance(c, Mapping) and isinstance(c.get("id"), str))
    return Claim(str(meta.get("namespace", "")), str(meta.get("name", "")), str(meta.get("creationTimestamp", "")), ids)


def read_api_key(obj: Mapping[str, Any], secrets_dir: Path | None) -> str | None:
    """The API key a url-sourced Connector's proxy expects, from ``<secrets_dir>/<secret>/<key>``."""
    ref = (((obj.get("spec") or {}).get("source") or {}).get("url") or {}).get("apiKeySecretRef")
    if not ref:
        return None
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    if secrets_dir is None or not name or not key or "/" in name + key or name.startswith(".") or key.startswith("."):
        logger.warning("api key secret not mounted", extra={"connector": _key(obj), "secret": name})
        return None
    path = secrets_dir / name / key
    try:
        return path.read_text().strip() or None
    except OSError:
        logger.warning("api key secret not mounted", extra={"connector": _key(obj), "secret": name})
        return None


class RemoteRegistryBuilder:
    """Turns the Ready Connectors into commands and auths; keeps one RemoteConnector (and so one
    concurrency limit) per workload across rebuilds."""

    def __init__(self, forwarder: Forwarder, *, secrets_dir: Path | None = None, timeout_margin: float = 5.0) -> None:
        self.forwarder = forwarder
        self.secrets_dir = secrets_dir
        self.timeout_margin = timeout_margin
        self._remotes: dict[tuple[Any, ...], RemoteConnector] = {}

    def _remote(self, obj: Mapping[str, Any]) -> RemoteConnector:
        spec = obj.get("spec") or {}
        timeout = float(spec.get("timeoutSeconds") or DEFAULT_TIMEOUT) + self.timeout_margin
        concurrency = int(spec.get("concurrency") or DEFAULT_CONCURRENCY)
        endpoint = str((obj.get("status") or {})["endpoint"]).rstrip("/")
        api_key = read_api_key(obj, self.secrets_dir)
        identity = (_key(obj), endpoint, timeout, concurrency, api_key)
        remote = self._remotes.get(identity)
        if remote is None:
            remote = RemoteConnector(_key(obj), endpoint, timeout, concurrency, api_key)
        return remote

    def build(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        local_commands: Iterable[Command] = (),
        local_auths: Iterable[AuthEntry] = (),
        revision: int,
    ) -> Registry:
        """In-process commands first (they win a duplicate id), then the oldest Connector's."""
        ready = [obj for obj in objects if is_ready(obj)]
        chosen = winners(claim_of(obj) for obj in ready)
        remotes: dict[tuple[Any, ...], RemoteConnector] = {}
        commands: list[Command] = list(local_commands)
        auths: list[AuthEntry] = list(local_auths)
        for obj in sorted(ready, key=lambda o: claim_of(o).rank):
            remote = self._remote(obj)
            remotes[(remote.key, remote.endpoint, remote.timeout, remote.concurrency, remote.api_key)] = remote
            status = obj.get("status") or {}
            for entry in status.get("commands") or []:
                command_id = entry.get("id") if isinstance(entry, Mapping) else None
                if not isinstance(command_id, str) or "/" not in command_id:
                    continue
                if chosen[command_id].key != remote.key:
                    continue
                connector = command_id.split("/", 1)[0]
                commands.append(RemoteCommand(command_id, connector, remote, dict(entry), self.forwarder))
            for entry in status.get("auths") or []:
                auth_id = entry.get("id") if isinstance(entry, Mapping) else None
                if isinstance(auth_id, str) and "/" in auth_id:
                    target = RemoteAuthTarget(remote.endpoint, remote.api_key)
                    auths.append(AuthEntry(auth_id, auth_id.split("/", 1)[0], dict(entry), target))
        self._remotes = remotes
        return Registry.build(commands, auths, revision=revision)
