"""The registry: an immutable snapshot of every command and auth the proxy serves.

A new registry is built whenever the set of connectors changes and swapped in with one
reference assignment, so a request sees the old catalog or the new one, never a mix.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from connector_proxy.auths import AuthEntry
from connector_proxy.catalog import CatalogSnapshot, EntryBytes
from connector_proxy.commands import Command

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceChoice:
    """A connector name both a first-party (SDK) package and a community package provide: one of
    them serves every command of that name, the other none (two implementations are never mixed
    under one name)."""

    connector: str
    served: str  # "first-party" or "community"
    served_by: str  # the package that serves it
    left_out: str  # the package that does not
    reason: str

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Registry:
    commands: Mapping[str, Command]
    auths: Mapping[str, AuthEntry]
    commands_catalog: CatalogSnapshot
    auths_catalog: CatalogSnapshot
    revision: int = 0
    problems: tuple[str, ...] = field(default=())
    sources: tuple[SourceChoice, ...] = field(default=())

    @classmethod
    def build(
        cls,
        commands: Iterable[Command],
        auths: Iterable[AuthEntry] = (),
        *,
        revision: int = 0,
        problems: Iterable[str] = (),
        sources: Iterable[SourceChoice] = (),
        entry_bytes: tuple[EntryBytes, EntryBytes] | None = None,
    ) -> Registry:
        """Build a snapshot. Commands come in precedence order: for a duplicate id the first one
        wins and the loser is reported in ``problems``. ``entry_bytes``: the JSON of the commands' and the
        auths' entries from earlier builds (a registry rebuilt at every change)."""
        notes = list(problems)
        by_id: dict[str, Command] = {}
        for command in commands:
            kept = by_id.get(command.id)
            if kept is not None:
                message = f"duplicate command id {command.id}: kept {kept.source}, ignored {command.source}"
                logger.warning("duplicate command id", extra={"command": command.id})
                notes.append(message)
                continue
            by_id[command.id] = command
        auths_by_id: dict[str, AuthEntry] = {}
        for auth in auths:
            if auth.id in auths_by_id:
                notes.append(f"duplicate auth id {auth.id}: kept the first one")
                continue
            auths_by_id[auth.id] = auth
        return cls(
            commands=MappingProxyType(by_id),
            auths=MappingProxyType(auths_by_id),
            commands_catalog=CatalogSnapshot.build(
                (c.catalog_entry() for c in by_id.values()), entry_bytes[0] if entry_bytes else None
            ),
            auths_catalog=CatalogSnapshot.build(
                (a.catalog_entry() for a in auths_by_id.values()), entry_bytes[1] if entry_bytes else None
            ),
            revision=revision,
            problems=tuple(notes),
            sources=tuple(sources),
        )

    @classmethod
    def empty(cls) -> Registry:
        return cls.build(())
