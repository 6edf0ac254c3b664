"""Loading SDK connectors from entry points: good, broken and wrong-typed entry points."""

from __future__ import annotations

from importlib.metadata import EntryPoint

from connector_proxy.loading.sdk import ENTRY_POINT_GROUP, load_sdk_connectors, sdk_entry_points
from proxytest import sdk_fixture


def _point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_installed_entry_points_include_the_http_connector() -> None:
    assert "http" in [ep.name for ep in sdk_entry_points()]


def test_good_broken_and_wrong_entry_points() -> None:
    result, connectors = load_sdk_connectors(
        [
            _point("demo", "proxytest.sdk_fixture:demo"),
            _point("missing", "no_such_module_anywhere:connector"),
            _point("wrong", "proxytest.sdk_fixture:LIFESPAN_EVENTS"),
        ]
    )
    assert connectors == [sdk_fixture.demo]
    assert {c.id for c in result.commands} == {f"sdkdemo/{name}" for name in sdk_fixture.demo.commands}
    assert len(result.problems) == 2
    assert "missing" in result.problems[0] and "ModuleNotFoundError" in result.problems[0]
    assert "wrong" in result.problems[1] and "not a spiff_connector_sdk.Connector" in result.problems[1]
