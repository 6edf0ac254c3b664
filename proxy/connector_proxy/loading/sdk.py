"""Loading first-party (SDK) connectors from the ``connector_proxy.connectors`` entry points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint, distributions, entry_points
from pathlib import Path
from typing import Any

from connector_proxy.auths import AuthEntry
from connector_proxy.commands import SdkCommand
from connector_proxy.connector_config import ConfigCheck, check_config, config_problem_lines
from connector_proxy.execution import exception_summary
from connector_proxy.loading.results import LoadResult
from connector_proxy.oauth.clients import catalog_metadata
from spiff_connector_sdk import Connector
from spiff_connector_sdk.connector import OAUTH2

ENTRY_POINT_GROUP = "connector_proxy.connectors"


def sdk_entry_points(paths: Sequence[Path] | None = None) -> list[EntryPoint]:
    """The SDK connectors' entry points: of the whole environment, or only of the distributions
    installed in ``paths``."""
    if paths is None:
        points = list(entry_points(group=ENTRY_POINT_GROUP))
    else:
        found = distributions(path=[str(p) for p in paths])
        points = [ep for dist in found for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
    return sorted(points, key=lambda ep: ep.name)


def load_sdk_connector(connector: Connector, config: Mapping[str, Any] | None = None) -> LoadResult:
    """The commands and auths of ``connector``; its ``config`` model, when it declares one, is
    checked against ``config`` (the proxy's config mapping)."""
    result = LoadResult()
    checked: ConfigCheck | None = None
    if connector.config_model is not None:
        checked = check_config(connector.name, connector.config_model, config or {})
        for line in config_problem_lines(checked):
            result.problem(line, config=True)
    for spec in connector.commands.values():
        try:
            result.commands.append(SdkCommand.from_spec(connector.name, spec, checked))
        except Exception as exc:
            result.problem(f"{connector.name}/{spec.name} cannot be described: {exception_summary(exc)}")
    for auth in connector.auths.values():
        auth_id = f"{connector.name}/{auth.name}"
        entry: dict[str, object] = {"id": auth_id, "parameters": []}
        if auth.description:
            entry["description"] = auth.description
        entry.update(catalog_metadata(auth))
        if auth.kind == OAUTH2:
            try:
                auth.oauth2_settings()
            except ValueError as error:
                result.problem(f"{auth_id} has invalid oauth2 settings: {error}")
        result.auths.append(AuthEntry(id=auth_id, connector=connector.name, entry=entry, target=auth))
    return result


def load_sdk_connectors(
    points: list[EntryPoint], *, describe: bool = True, config: Mapping[str, Any] | None = None
) -> tuple[LoadResult, list[Connector]]:
    """The connectors of ``points``; their commands and auths too unless ``describe`` is false
    (then the result holds only the entry points' problems)."""
    result = LoadResult()
    connectors: list[Connector] = []
    for point in points:
        try:
            loaded = point.load()
        except Exception as exc:
            result.problem(f"entry point {point.name} ({point.value}) failed to load: {exception_summary(exc)}")
            continue
        if not isinstance(loaded, Connector):
            result.problem(f"entry point {point.name} ({point.value}) is not a spiff_connector_sdk.Connector")
            continue
        connectors.append(loaded)
        if describe:
            result.extend(load_sdk_connector(loaded, config))
    return result, connectors
