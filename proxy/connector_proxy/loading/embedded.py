"""Embedded mode: build the registry from the connector packages installed in this environment."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector_proxy.loading.community import PLUGIN_PREFIX, community_package_names, load_community_packages
from connector_proxy.loading.results import LoadResult
from connector_proxy.loading.sdk import load_sdk_connector, load_sdk_connectors, sdk_entry_points
from connector_proxy.registry import Registry, SourceChoice
from connector_proxy.settings import Settings
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


FIRST_PARTY_BY_DEFAULT = (
    "first-party by default: the package shipped and tested with this proxy; "
    "set CONNECTOR_PROXY_PREFER_COMMUNITY={name} to serve the community package instead"
)
COMMUNITY_PREFERRED = "CONNECTOR_PROXY_PREFER_COMMUNITY names it"


def _choose(
    connectors: list[Connector], community: list[str], prefer_community: set[str], origins: dict[str, str]
) -> tuple[list[Connector], list[str], list[SourceChoice]]:
    """One source per connector name provided twice; see :class:`SourceChoice`."""
    packages = {package.removeprefix(PLUGIN_PREFIX): package for package in community}
    kept_connectors: list[Connector] = []
    left_out_packages: set[str] = set()
    choices: list[SourceChoice] = []
    for connector in connectors:
        package = packages.get(connector.name)
        first_party = origins.get(connector.name, f"entry point {connector.name}")
        if package is not None and connector.name in prefer_community:
            choices.append(SourceChoice(connector.name, "community", package, first_party, COMMUNITY_PREFERRED))
            continue
        kept_connectors.append(connector)
        if package is not None:
            reason = FIRST_PARTY_BY_DEFAULT.format(name=connector.name)
            choices.append(SourceChoice(connector.name, "first-party", first_party, package, reason))
            left_out_packages.add(package)
    for choice in choices:
        logger.info("connector served by one of two packages", extra=choice.as_dict())
    return kept_connectors, [p for p in community if p not in left_out_packages], choices


def load_embedded(
    *,
    connector_paths: Sequence[Path] = (),
    disabled: Sequence[str] = (),
    only: Sequence[str] = (),
    prefer_community: Sequence[str] = (),
    paths_only: bool = False,
    revision: int = 1,
    config: Mapping[str, Any] | None = None,
) -> EmbeddedConnectors:
    """Load SDK connectors (entry points) first, then community ``connector_*`` packages.

    A connector name both provide is served by one of them entirely: the first-party one, unless
    ``prefer_community`` names it (:class:`SourceChoice`, reported in ``/v1/status``). Otherwise
    first-party commands take precedence over community ones with the same id. ``disabled``
    connector names are left out entirely, and so is every name not in ``only`` when it is not
    empty. ``paths_only``: only the packages installed in ``connector_paths`` (a workload's own),
    none of this environment's. ``config``: the config mapping the connectors' declared config
    models are checked against (:mod:`connector_proxy.connector_config`).
    """
    add_connector_paths(connector_paths)
    skip = set(disabled)
    where = list(connector_paths) if paths_only else None
    if only:
        kept_names = set(only) - skip
        skip |= {ep.name for ep in sdk_entry_points(where)} - kept_names
        skip |= {name.removeprefix(PLUGIN_PREFIX) for name in community_package_names(where)} - kept_names
    result = LoadResult()
    points = [ep for ep in sdk_entry_points(where) if ep.name not in skip]
    sdk_result, connectors = load_sdk_connectors(points, describe=False)
    result.extend(sdk_result)
    community = [name for name in community_package_names(where) if name.removeprefix(PLUGIN_PREFIX) not in skip]
    origins = {ep.name: f"entry point {ep.name} = {ep.value}" for ep in points}
    kept, community, choices = _choose(
        [c for c in connectors if c.name not in skip], community, set(prefer_community), origins
    )
    for connector in kept:
        result.extend(load_sdk_connector(connector, config))
    result.extend(load_community_packages(community))
    registry = Registry.build(
        [c for c in result.commands if c.connector not in skip],
        [a for a in result.auths if a.connector not in skip],
        revision=revision,
        problems=result.problems,
        sources=choices,
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


def load_configured(settings: Settings) -> EmbeddedConnectors:
    """The connector packages ``settings`` say to load here (paths, disabled, only, prefer-community)."""
    return load_embedded(
        connector_paths=settings.connector_paths,
        disabled=settings.disabled_connectors,
        only=settings.only_connectors,
        prefer_community=settings.prefer_community,
        paths_only=settings.connector_paths_only,
        config=settings.connector_config(),
    )
