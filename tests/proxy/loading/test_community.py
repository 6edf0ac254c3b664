"""Community ``connector_<name>`` packages, pip-installed from tests/fixtures/community, described
exactly as the reference proxy describes them; broken packages and modules are left out (and
reported without exception text) while everything else stays listed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from connector_proxy.loading.community import community_package_names, load_community_package
from connector_proxy.loading.embedded import add_connector_paths
from proxytest.logs import captured_log_text
from proxytest.protocol import validate

Described = list[tuple[str, str, bool]]
ProxyFactory = Callable[..., str]

# Every command of connector-example, with its parameters as (id, type, required), in signature order.
EXAMPLE_COMMANDS: dict[str, Described] = {
    # commands/describe.py: one class per rule
    "example/PlainTypes": [("text", "str", True), ("number", "int", True), ("flag", "bool", True)],
    "example/WithDefaults": [("text", "str", False), ("number", "int", False), ("flag", "bool", False),
                             ("anything", "any", False)],
    "example/NoAnnotations": [("value", "any", True), ("fallback", "any", False)],
    "example/OptionalTypes": [("old_style", "str", False), ("new_style", "int", False), ("defaulted", "bool", False)],
    "example/GenericArguments": [("names", "str", True), ("pair", "int", True), ("mapping", "any", True),
                                 ("maybe_dict", "any", False), ("plain_dict", "any", True), ("dicts", "any", True)],
    "example/UnionTypes": [("either", "any", True), ("either_or_none", "any", False), ("typed_any", "any", True)],
    "example/MarkerTypes": [("annotated", "any", True), ("choice", "any", True), ("number", "any", True),
                            ("maybe_annotated", "any", False)],
    "example/VarPositional": [("name", "str", True), ("args", "any", True), ("flag", "bool", False)],
    "example/VarKeywordOptions": [("name", "str", True), ("options", "any", True)],
    "example/NamedKwargs": [("other", "str", True)],
    "example/NoInit": [("args", "any", True)],
    # commands/documented.py
    "example/SendMessage": [("channel", "str", True), ("text", "str", True), ("silent", "bool", False),
                            ("thread", "str", False)],
    "example/OnlyFields": [("value", "int", True)],
    "example/MalformedFields": [("value", "str", True)],
    # commands/future_annotations.py
    "example/StringAnnotations": [("text", "any", True), ("maybe", "any", True), ("count", "any", False)],
    # commands/nested/__init__.py (a nested sub-package is scanned as one module)
    "example/NestedCommand": [("depth", "int", False)],
    # commands/run.py
    "example/Echo": [("message", "str", True), ("note", "str", False), ("count", "int", False)],
    "example/MinimalV2": [],
    "example/AcceptsAnything": [],
    "example/ConfigValue": [("key", "str", True)],
    "example/LegacyJson": [("value", "any", True), ("status", "int", False)],
    "example/LegacyText": [("text", "str", True), ("status", "int", False), ("mimetype", "str", False)],
    "example/StartJob": [("job", "str", True)],
}  # fmt: skip

OTHER_COMMANDS: dict[str, Described] = {
    "failing/Explode": [("password", "str", True), ("username", "str", False)],
    "failing/ConfigLeak": [("key", "str", False)],
    "failing/NotAMapping": [],
    "failing/NotSerialisable": [],
    "failing/MalformedV2": [("variant", "str", True)],
    "failing/Sleep": [("seconds", "any", False)],
    "failing/WaitForFile": [("directory", "str", True), ("name", "str", True), ("release", "str", False),
                            ("max_wait", "any", False)],
    "partial/Alpha": [("value", "str", False)],
    "partial/Zulu": [("value", "str", False)],
}  # fmt: skip

NOT_COMMANDS = {
    "example/PackageLevelCommand",  # defined in commands/__init__.py
    "example/EchoMixin",  # imported into commands modules from connector_example.helpers
    "example/InnerCommand",  # defined in commands/nested/inner.py, only imported into nested/__init__.py
    "example/Any",  # typing names imported into commands modules
    "example/Optional",
    "example/OAuth",  # an auth, not a command
    "failing/UpstreamRefusedError",  # imported from connector_failing.errors
    "failing/Decimal",  # imported from the standard library
    "failing/Path",
    "partial/NotListedEither",  # defined in the module that fails to import
    "broken/NeverListed",  # its package fails to import
}

IMPORT_DETAILS = ("BROKEN-IMPORT-DETAIL-7f3a", "PARTIAL-IMPORT-DETAIL-91c2", "cannot start")


def _described(entry: dict[str, Any]) -> Described:
    return [(p["id"], p["type"], p["required"]) for p in entry["parameters"]]


def _catalog(client: httpx.Client, path: str = "/v1/commands") -> dict[str, dict[str, Any]]:
    response = client.get(path)
    assert response.status_code == 200
    catalog = response.json()
    validate("CommandCatalog", catalog)
    return {entry["id"]: entry for entry in catalog}


def test_example_commands_are_described_by_the_reference_rules(client: httpx.Client) -> None:
    catalog = _catalog(client)
    example = {cid: entry for cid, entry in catalog.items() if cid.startswith("example/")}
    assert sorted(example) == sorted(EXAMPLE_COMMANDS)
    for command_id, expected in EXAMPLE_COMMANDS.items():
        assert _described(example[command_id]) == expected, command_id


def test_other_fixture_commands_are_listed(client: httpx.Client) -> None:
    catalog = _catalog(client)
    for command_id, expected in OTHER_COMMANDS.items():
        assert _described(catalog[command_id]) == expected, command_id
    listed_connectors = {cid.split("/", 1)[0] for cid in catalog}
    assert {"example", "failing", "partial", "http"} <= listed_connectors
    assert "broken" not in listed_connectors
    assert {cid for cid in catalog if cid.startswith("partial/")} == {"partial/Alpha", "partial/Zulu"}


def test_classes_that_are_not_commands_are_not_listed(client: httpx.Client) -> None:
    catalog = _catalog(client)
    assert NOT_COMMANDS.isdisjoint(catalog)


def test_additive_metadata_on_community_commands(client: httpx.Client) -> None:
    catalog = _catalog(client)
    echo = catalog["example/Echo"]
    assert echo["description"] == "Echo the parameters, the config keys and the task data keys (v2 result)."
    params = {p["id"]: p for p in echo["parameters"]}
    assert params["message"]["schema"] == {"type": "string"}
    assert params["count"]["schema"] == {"type": "integer", "default": 1}
    explode = {p["id"]: p for p in catalog["failing/Explode"]["parameters"]}
    assert explode["password"]["schema"]["writeOnly"] is True
    assert "writeOnly" not in explode["username"]["schema"]


def _reference_shape(entry: dict[str, Any]) -> bytes:
    """The entry exactly as the reference proxy lists it: ``id`` and ``parameters[].id/type/required``."""
    parameters = [{k: p[k] for k in ("id", "type", "required")} for p in entry["parameters"]]
    return orjson.dumps({"id": entry["id"], "parameters": parameters})


def test_docstring_fields_describe_parameters(client: httpx.Client) -> None:
    catalog = _catalog(client)
    send = catalog["example/SendMessage"]
    # The reference's fields, byte for byte; the descriptions are extra keys.
    assert _reference_shape(send) == (
        b'{"id":"example/SendMessage","parameters":[{"id":"channel","type":"str","required":true},'
        b'{"id":"text","type":"str","required":true},{"id":"silent","type":"bool","required":false},'
        b'{"id":"thread","type":"str","required":false}]}'
    )
    assert send["description"] == "Post a message to a channel.\n\nThe message is sent as plain text."
    assert {p["id"]: p.get("description") for p in send["parameters"]} == {
        "channel": "Where to post it, for example ``#general``.",
        "text": "What to say.",
        "silent": "Post without notifying anyone.",
        "thread": "Reply in this thread instead.",  # from the __init__ docstring
    }
    only_fields = catalog["example/OnlyFields"]
    assert "description" not in only_fields
    assert only_fields["parameters"][0]["description"] == "A docstring of fields only gives no command description."
    # A field list the parser rejects: listed all the same, its whole docstring the description.
    malformed = catalog["example/MalformedFields"]
    assert malformed["description"].endswith(":param too many words here: nothing")
    assert "description" not in malformed["parameters"][0]
    # Undocumented parameters and plain docstrings are as before.
    assert (
        catalog["example/Echo"]["description"]
        == "Echo the parameters, the config keys and the task data keys (v2 result)."
    )
    assert all("description" not in p for p in catalog["example/Echo"]["parameters"])


def test_execute_async_marks_a_command_as_accepting_a_callback(client: httpx.Client) -> None:
    community = {cid: entry for cid, entry in _catalog(client).items() if cid in EXAMPLE_COMMANDS | OTHER_COMMANDS}
    assert len(community) == len(EXAMPLE_COMMANDS) + len(OTHER_COMMANDS)
    # Only the class with execute_async; every other community entry is without the key.
    assert {cid: entry.get("accepts_callback") for cid, entry in community.items() if "accepts_callback" in entry} == {
        "example/StartJob": True
    }
    assert _reference_shape(community["example/StartJob"]) == (
        b'{"id":"example/StartJob","parameters":[{"id":"job","type":"str","required":true}]}'
    )


def test_auths_list_the_oauth_class(client: httpx.Client) -> None:
    auths = _catalog(client, "/v1/auths")
    assert sorted(aid for aid in auths if aid.startswith(("example/", "broken/", "partial/", "failing/"))) == [
        "example/OAuth"
    ]
    oauth = auths["example/OAuth"]
    assert oauth["parameters"] == []
    assert oauth["description"] == "OAuth 2 authorization-code flow against an example provider."


def test_status_reports_load_problems_without_exception_text(
    start_proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = start_proxy()
    with httpx.Client(base_url=url, timeout=10) as client:
        response = client.get("/v1/status")
        catalog = _catalog(client)
    assert response.status_code == 200
    status = response.json()
    problems: list[str] = status["problems"]
    broken = [p for p in problems if "connector_broken" in p]
    partial = [p for p in problems if "connector_partial" in p]
    assert len(broken) == 1 and "RuntimeError" in broken[0]
    assert len(partial) == 1 and "connector_partial.commands.broken_module" in partial[0]
    assert "RuntimeError" in partial[0]
    for detail in IMPORT_DETAILS:
        assert detail not in response.text
        assert detail not in captured_log_text(caplog)
    # The problems were logged.
    assert any(getattr(r, "problem", None) == broken[0] for r in caplog.records)
    assert any(getattr(r, "problem", None) == partial[0] for r in caplog.records)
    assert {"example", "failing", "partial", "http"} <= set(status["connectors"])
    assert "broken" not in status["connectors"]
    assert status["commands"] == len(catalog)


def test_loader_directly(community_site: Path) -> None:
    add_connector_paths([community_site])
    names = community_package_names()
    assert {"connector_example", "connector_broken", "connector_partial", "connector_failing"} <= set(names)

    broken = load_community_package("connector_broken")
    assert broken.commands == [] and broken.auths == []
    assert len(broken.problems) == 1

    partial = load_community_package("connector_partial")
    assert sorted(c.id for c in partial.commands) == ["partial/Alpha", "partial/Zulu"]
    assert len(partial.problems) == 1

    example = load_community_package("connector_example")
    assert example.problems == []
    assert sorted(c.id for c in example.commands) == sorted(EXAMPLE_COMMANDS)
    assert [a.id for a in example.auths] == ["example/OAuth"]
    # The auth target is the class itself, used by the reference as OAuth().app_description(config).
    oauth_class = example.auths[0].target
    description = oauth_class().app_description({"EXAMPLE_CLIENT_ID": "id-1", "EXAMPLE_TOKEN_URL": "https://t.invalid"})
    assert description["consumer_key"] == "id-1"
    assert description["access_token_url"] == "https://t.invalid"
