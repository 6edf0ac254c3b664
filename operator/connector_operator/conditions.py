"""Status conditions (the Kubernetes ``metav1.Condition`` shape)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

READY = "Ready"
SPEC_VALID = "SpecValid"
WORKLOAD_AVAILABLE = "WorkloadAvailable"
DISCOVERED = "Discovered"
CONFLICT_FREE = "ConflictFree"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None
    reason: str
    message: str = ""

    @property
    def status_text(self) -> str:
        return "Unknown" if self.status is None else ("True" if self.status else "False")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    existing: Sequence[dict[str, Any]] | None, updates: Sequence[Condition], generation: int, at: str | None = None
) -> list[dict[str, Any]]:
    """Apply ``updates`` to ``existing``; ``lastTransitionTime`` moves only when a status changes."""
    stamp = at or now()
    by_type = {c.get("type"): dict(c) for c in existing or () if c.get("type")}
    for update in updates:
        previous = by_type.get(update.type)
        changed = previous is None or previous.get("status") != update.status_text
        by_type[update.type] = {
            "type": update.type,
            "status": update.status_text,
            "reason": update.reason,
            "message": update.message,
            "observedGeneration": generation,
            "lastTransitionTime": stamp if changed else (previous or {}).get("lastTransitionTime", stamp),
        }
    order = [READY, SPEC_VALID, WORKLOAD_AVAILABLE, DISCOVERED, CONFLICT_FREE]
    return sorted(by_type.values(), key=lambda c: (order.index(c["type"]) if c["type"] in order else 99, c["type"]))


def seconds_false(existing: Sequence[dict[str, Any]] | None, kind: str, at: datetime.datetime | None = None) -> float:
    """How long condition ``kind`` has been False (0 when it is not False, or its time is unreadable)."""
    for condition in existing or ():
        if condition.get("type") == kind and condition.get("status") == "False":
            try:
                since = datetime.datetime.strptime(str(condition.get("lastTransitionTime")), "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                return 0.0
            current = at or datetime.datetime.now(datetime.UTC)
            return max(0.0, (current - since.replace(tzinfo=datetime.UTC)).total_seconds())
    return 0.0
