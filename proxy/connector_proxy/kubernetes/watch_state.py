"""How a Kubernetes-mode proxy's following of the API stands: what readiness, metrics and logs report.

Apart from :mod:`connector_proxy.kubernetes.watch` so that what reads it (the state, the health
routes) does not import the Kubernetes client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class WatchState:
    synced: bool = False  # a first full list succeeded
    connected: bool = False
    last_error: str | None = None
    last_sync: float | None = None
    disconnected_since: float | None = None
    relists: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "synced": self.synced,
            "connected": self.connected,
            "last_error": self.last_error,
            "seconds_since_sync": None if self.last_sync is None else round(time.monotonic() - self.last_sync, 3),
            "stale": self.synced and not self.connected,
            "relists": self.relists,
        }
