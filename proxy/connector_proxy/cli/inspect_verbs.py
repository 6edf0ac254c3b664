"""``connector-proxy commands``, ``describe <id>`` and ``check``: what ``serve`` would serve, without serving.

They load the connector packages exactly as ``serve`` does in embedded mode (the same settings:
``CONNECTOR_PROXY_CONNECTOR_PATHS``, ``..._DISABLED_CONNECTORS``, ``..._ONLY_CONNECTORS``, ...) and
print the catalog ``GET /v1/commands`` would answer. ``check`` exits 1 when loading reported a
problem (a package that does not import, a command it cannot describe, a duplicate id, an OAuth
declaration it cannot use), for a connector author's CI.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import sys
from typing import Any

import orjson

from connector_proxy.cli.settings_errors import settings_or_exit
from connector_proxy.loading.embedded import EmbeddedConnectors, load_configured
from connector_proxy.settings import Settings

FAILED = 1
_DESCRIPTION_MIN = 20


def catalog(embedded: EmbeddedConnectors) -> list[dict[str, Any]]:
    """The entries of ``GET /v1/commands``, in its order."""
    entries: list[dict[str, Any]] = orjson.loads(embedded.registry.commands_catalog.body)
    return entries


def _parameters(entry: dict[str, Any]) -> str:
    return ", ".join(p["id"] + ("*" if p.get("required") else "") for p in entry["parameters"]) or "-"


def _table(rows: list[tuple[str, str, str]]) -> str:
    width = shutil.get_terminal_size((120, 20)).columns
    id_width = max(len(r[0]) for r in rows)
    parameters_width = min(max(len(r[1]) for r in rows), 60)
    lines = []
    for command_id, parameters, description in rows:
        if len(parameters) > parameters_width:
            parameters = parameters[: parameters_width - 3] + "..."
        room = max(width - id_width - parameters_width - 4, _DESCRIPTION_MIN)
        text = description if len(description) <= room else description[: room - 3] + "..."
        lines.append(f"{command_id:<{id_width}}  {parameters:<{parameters_width}}  {text}".rstrip())
    return "\n".join(lines)


def commands(args: argparse.Namespace) -> int:
    entries = catalog(load_configured(settings_or_exit(Settings, "CONNECTOR_PROXY_")))
    if args.json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print("no commands: no connector package is installed (or every one is left out)", file=sys.stderr)
        return 0
    rows = [("COMMAND", "PARAMETERS (* required)", "DESCRIPTION")]
    rows += [(e["id"], _parameters(e), (e.get("description") or "").splitlines()[0] if e.get("description") else "")
             for e in entries]  # fmt: skip
    print(_table(rows))
    return 0


def _rule_text(schema: dict[str, Any]) -> str:
    """The schema keywords a person reads first (type, allowed values, ranges), compactly."""
    shown = {k: v for k, v in schema.items() if k not in ("description", "examples", "title")}
    return json.dumps(shown, ensure_ascii=False)


def describe(args: argparse.Namespace) -> int:
    entries = {e["id"]: e for e in catalog(load_configured(settings_or_exit(Settings, "CONNECTOR_PROXY_")))}
    entry = entries.get(args.id)
    if entry is None:
        close = difflib.get_close_matches(args.id, list(entries), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        print(f"connector-proxy: no command {args.id}{hint}; `connector-proxy commands` lists them", file=sys.stderr)
        return FAILED
    if args.json:
        print(json.dumps(entry, indent=2, ensure_ascii=False))
        return 0
    print(entry["id"])
    if entry.get("description"):
        print(f"  {entry['description']}")
    print("parameters:" if entry["parameters"] else "parameters: none")
    for parameter in entry["parameters"]:
        schema = parameter.get("schema") or {}
        flags = ["required" if parameter.get("required") else "optional"]
        if schema.get("writeOnly"):
            flags.append("secret")
        if "default" in schema:
            flags.append(f"default {json.dumps(schema['default'])}")
        print(f"  {parameter['id']} ({parameter['type']}; {', '.join(flags)})")
        if parameter.get("description"):
            print(f"      {parameter['description']}")
        print(f"      schema: {_rule_text(schema)}")
    return 0


def check(args: argparse.Namespace) -> int:
    settings = settings_or_exit(Settings, "CONNECTOR_PROXY_")
    embedded = load_configured(settings)
    registry = embedded.registry
    connectors = sorted({command.connector for command in registry.commands.values()})
    print(
        f"settings: ok; {len(connectors)} connector(s) ({', '.join(connectors) or 'none'}), "
        f"{len(registry.commands)} command(s), {len(registry.auths)} auth(s)"
    )
    for choice in registry.sources:
        print(f"note: {choice.connector} is served by the {choice.served} package: {choice.reason}")
    if registry.problems:
        print(f"{len(registry.problems)} problem(s):", file=sys.stderr)
        for problem in registry.problems:
            print(f"  {problem}", file=sys.stderr)
        return FAILED
    if args.require and not set(args.require) <= set(registry.commands):
        missing = sorted(set(args.require) - set(registry.commands))
        print(f"missing command(s): {', '.join(missing)}", file=sys.stderr)
        return FAILED
    print("ok")
    return 0
