"""The registry snapshot: duplicates resolved deterministically, catalogs prebuilt."""

from __future__ import annotations

import orjson

from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.registry import Registry
from spiff_connector_sdk import Connector, Context, Result


def _connector(name: str, commands: list[str], marker: str) -> Connector:
    connector = Connector(name)
    for command in commands:

        async def run(ctx: Context, value: str = marker) -> Result:
            return Result(body=value)

        run.__doc__ = f"{command} from {marker}"
        connector.command(command)(run)
    return connector


def test_first_command_with_an_id_wins_and_the_loser_is_reported() -> None:
    first = load_sdk_connector(_connector("dup", ["A", "B"], "first")).commands
    second = load_sdk_connector(_connector("dup", ["B", "C"], "second")).commands
    registry = Registry.build([*first, *second], revision=7)
    assert sorted(registry.commands) == ["dup/A", "dup/B", "dup/C"]
    assert registry.commands["dup/B"] is first[1]
    assert len(registry.problems) == 1 and "duplicate command id dup/B" in registry.problems[0]
    catalog = orjson.loads(registry.commands_catalog.body)
    assert [c["id"] for c in catalog] == ["dup/A", "dup/B", "dup/C"]
    assert catalog[1]["description"] == "B from first"
    assert registry.revision == 7


def test_empty_registry_has_empty_catalogs() -> None:
    registry = Registry.empty()
    assert registry.commands_catalog.body == b"[]"
    assert registry.auths_catalog.body == b"[]"
