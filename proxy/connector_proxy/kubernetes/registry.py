"""Building the registry from Connector resources (pure: no I/O but reading mounted API keys)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector_proxy.auths import AuthEntry, RemoteAuthTarget
from connector_proxy.catalog import EntryBytes
from connector_proxy.commands import Command
from connector_proxy.contract import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_SECONDS, claim_of, key_of, winners
from connector_proxy.kubernetes.forwarding import Forwarder, RemoteCommand, RemoteConnector
from connector_proxy.kubernetes.recheck import RecheckNotifier
from connector_proxy.registry import Registry
from connector_proxy.secret_files import MountedKey

logger = logging.getLogger(__name__)


def url_source(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A url-sourced Connector's ``spec.source.url`` (an existing connector proxy), else None."""
    url = ((obj.get("spec") or {}).get("source") or {}).get("url")
    return url if isinstance(url, Mapping) else None


def api_key_secret(obj: Mapping[str, Any]) -> str | None:
    """The name of the Secret a url-sourced Connector's ``apiKeySecretRef`` names, else None."""
    ref = (url_source(obj) or {}).get("apiKeySecretRef")
    if not isinstance(ref, Mapping):
        return None
    return str(ref.get("name", "")) or None


def read_api_key(obj: Mapping[str, Any], secrets_dir: Path | None) -> MountedKey | None:
    """The API key a url-sourced Connector's proxy expects, mounted at ``<secrets_dir>/<secret>/<key>``
    (read at every use that finds the file changed: a rotated Secret takes effect without a restart)."""
    ref = (url_source(obj) or {}).get("apiKeySecretRef")
    if not ref:
        return None
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    if secrets_dir is None or not name or not key or "/" in name + key or name.startswith(".") or key.startswith("."):
        logger.warning("api key secret not mounted", extra={"connector": key_of(obj), "secret": name})
        return None
    mounted = MountedKey(secrets_dir / name / key)
    if mounted.value() is None:
        logger.warning("api key secret not mounted", extra={"connector": key_of(obj), "secret": name})
        return None
    return mounted


@dataclass(frozen=True)
class _Built:
    """One Connector's commands as the last build made them, and what they were made from."""

    remote: RemoteConnector
    entries: Sequence[Any]  # its catalog's list of entries (held: compared by identity)
    served: frozenset[str]
    commands: tuple[RemoteCommand, ...]


class RemoteRegistryBuilder:
    """Turns the Ready Connectors into commands and auths; keeps one RemoteConnector (and so one
    concurrency limit) per workload across rebuilds. ``refusals`` hears of url sources' 401/403.

    A rebuild follows every change of any Connector: the commands of a Connector whose workload,
    catalog and won ids did not change are reused, with their catalog entries' JSON, so one change
    costs little more than its own Connector's commands."""

    def __init__(
        self,
        forwarder: Forwarder,
        *,
        secrets_dir: Path | None = None,
        timeout_margin: float = 5.0,
        refusals: RecheckNotifier | None = None,
        workload_token: MountedKey | None = None,
    ) -> None:
        self.forwarder = forwarder
        self.workload_token = workload_token
        self.secrets_dir = secrets_dir
        self.timeout_margin = timeout_margin
        self.refusals = refusals
        self._remotes: dict[tuple[Any, ...], RemoteConnector] = {}
        self._built: dict[str, _Built] = {}
        self._kept = (EntryBytes(), EntryBytes())

    def _remote(self, obj: Mapping[str, Any]) -> RemoteConnector:
        spec = obj.get("spec") or {}
        timeout = float(spec.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS) + self.timeout_margin
        concurrency = int(spec.get("concurrency") or DEFAULT_CONCURRENCY)
        endpoint = str((obj.get("status") or {})["endpoint"]).rstrip("/")
        federated = url_source(obj) is not None
        candidate = RemoteConnector(
            key_of(obj),
            endpoint,
            timeout,
            concurrency,
            read_api_key(obj, self.secrets_dir),
            federated=federated,
            secret=api_key_secret(obj),
            token=None if federated else self.workload_token,  # never sent outside the operator's workloads
        )
        return self._remotes.get(candidate.identity, candidate)

    def build(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        local_commands: Iterable[Command] = (),
        local_auths: Iterable[AuthEntry] = (),
        revision: int,
    ) -> Registry:
        """In-process commands first (they win a duplicate id), then the oldest Connector's."""
        claims = [(obj, claim) for obj in objects if (claim := claim_of(obj)) is not None]
        chosen = winners(claim for _, claim in claims)
        remotes: dict[tuple[Any, ...], RemoteConnector] = {}
        commands: list[Command] = list(local_commands)
        auths: list[AuthEntry] = list(local_auths)
        built: dict[str, _Built] = {}
        for obj, claim in sorted(claims, key=lambda pair: pair[1].rank):
            remote = self._remote(obj)
            remotes[remote.identity] = remote
            status = obj.get("status") or {}
            entries = status.get("commands") or []
            served = frozenset(command_id for command_id in claim.command_ids if chosen[command_id].key == remote.key)
            last = self._built.get(claim.key)
            if last is None or last.remote is not remote or last.entries is not entries or last.served != served:
                last = _Built(remote, entries, served, tuple(self._commands(remote, entries, served)))
            built[claim.key] = last
            commands.extend(last.commands)
            for entry in status.get("auths") or []:
                auth_id = entry.get("id") if isinstance(entry, Mapping) else None
                if isinstance(auth_id, str) and "/" in auth_id:
                    target = RemoteAuthTarget(remote.endpoint, remote.api_key, remote.token)
                    auths.append(AuthEntry(auth_id, auth_id.split("/", 1)[0], dict(entry), target))
        self._remotes, self._built = remotes, built
        return Registry.build(commands, auths, revision=revision, entry_bytes=self._kept)

    def _commands(
        self, remote: RemoteConnector, entries: Sequence[Any], served: frozenset[str]
    ) -> Iterator[RemoteCommand]:
        for entry in entries:
            command_id = entry.get("id") if isinstance(entry, Mapping) else None
            if isinstance(command_id, str) and command_id in served:
                connector = command_id.split("/", 1)[0]
                yield RemoteCommand(command_id, connector, remote, dict(entry), self.forwarder, self.refusals)
