"""Which Connector wins a command id claimed by several: the oldest one.

Shared by the operator (which reports the loser in its status) and the proxy (which routes the
id to the winner), so both always agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """A Connector's claim on command ids. ``created`` is its RFC 3339 creationTimestamp."""

    namespace: str
    name: str
    created: str
    command_ids: frozenset[str]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def rank(self) -> tuple[str, str, str]:
        """Older first; same second: by namespace, then name (deterministic everywhere)."""
        return (self.created, self.namespace, self.name)


def lost_commands(claim: Claim, others: Iterable[Claim]) -> dict[str, str]:
    """Command ids of ``claim`` that an older Connector holds, mapped to that winner's key."""
    lost: dict[str, str] = {}
    for other in sorted(others, key=lambda c: c.rank):
        if other.key == claim.key or other.rank >= claim.rank:
            continue
        for command_id in claim.command_ids & other.command_ids:
            lost.setdefault(command_id, other.key)
    return lost


def winners(claims: Iterable[Claim]) -> dict[str, Claim]:
    """For every command id, the claim that serves it."""
    chosen: dict[str, Claim] = {}
    for claim in sorted(claims, key=lambda c: c.rank):
        for command_id in claim.command_ids:
            chosen.setdefault(command_id, claim)
    return chosen
