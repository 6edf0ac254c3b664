"""Embedded mode: build the registry from the connector packages installed in this environment."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from connector_proxy.loading.community import community_package_names, load_community_packages
from connector_proxy.loading.results import LoadResult
from connector_proxy.loading.sdk import load_sdk_connectors, sdk_entry_points
from connector_proxy.registry import Registry
from spiff_connector_sdk import Connector

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedConnectors:
    registry: Registry
    connectors: tuple[Connector, ...]


def add_connector_paths(paths: Sequence[Path]) -> None:
    for path in paths:
        text = str(path)
        if text not in sys.path:
            sys.path.append(text)


def load_embedded(
    *,
    connector_paths: Sequence[Path] = (),
    disabled: Sequence[str] = (),
    paths_only: bool = False,
    revision: int = 1,
) -> EmbeddedConnectors:
    """Load SDK connectors (entry points) first, then community ``connector_*`` packages.

    First-party commands take precedence over community ones with the same id; both are kept
    when ids differ. ``disabled`` connector names are left out entirely. ``paths_only``: only the
    packages installed in ``connector_paths`` (a workload's own), none of this environment's.
    """
    add_connector_paths(connector_paths)
    skip = set(disabled)
    where = list(connector_paths) if paths_only else None
    result = LoadResult()
    sdk_result, connectors = load_sdk_connectors([ep for ep in sdk_entry_points(where) if ep.name not in skip])
    kept = [c for c in connectors if c.name not in skip]
    result.extend(sdk_result)
    community = [name for name in community_package_names(where) if name.removeprefix("connector_") not in skip]
    result.extend(load_community_packages(community))
    registry = Registry.build(
        [c for c in result.commands if c.connector not in skip],
        [a for a in result.auths if a.connector not in skip],
        revision=revision,
        problems=result.problems,
    )
    logger.info(
        "registry built",
        extra={
            "commands": len(registry.commands),
            "auths": len(registry.auths),
            "problems": len(registry.problems),
            "revision": revision,
        },
    )
    return EmbeddedConnectors(registry=registry, connectors=tuple(kept))
