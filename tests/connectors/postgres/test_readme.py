"""The README's tables list exactly what the connector has: its error codes and its parameters."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from spiff_connector_postgres import connector, errors

README = Path(__file__).resolve().parents[3] / "connectors" / "postgres" / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_error_code_table_lists_every_own_code() -> None:
    listed = set(re.findall(r"^\| `([A-Za-z]+)` \|", _section("Error codes"), re.MULTILINE))
    codes = {value for name, value in vars(errors).items() if name.isupper() and isinstance(value, str)}
    assert listed == codes


def test_the_parameter_table_lists_every_parameter() -> None:
    listed = set(re.findall(r"^\| `([a-z_]+)` +\|", _section("Parameters"), re.MULTILINE))
    declared = {
        name
        for spec in connector.commands.values()
        for name in inspect.signature(spec.func).parameters
        if name != "ctx"
    }
    assert listed == declared


def test_the_command_table_lists_every_command() -> None:
    listed = set(re.findall(r"^\| `pg/([A-Za-z]+)` +\|", _section("Commands"), re.MULTILINE))
    assert listed == set(connector.commands)


def test_docs_errors_names_every_own_code() -> None:
    text = (README.parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    codes = {value for name, value in vars(errors).items() if name.isupper() and isinstance(value, str)}
    assert {code for code in codes if f"`{code}`" not in text} == set()
