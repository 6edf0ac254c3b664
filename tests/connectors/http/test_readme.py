"""The README: its error-code table lists exactly the codes the connector can report, its pool table the settings."""

from __future__ import annotations

import re
from pathlib import Path

from spiff_connector_http import errors
from spiff_connector_http.settings import PoolSettings

README = Path(__file__).resolve().parents[3] / "connectors" / "http" / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_error_code_table_lists_every_code() -> None:
    listed = set(re.findall(r"^\| `([A-Za-z<>]+)`", _section("Error codes"), re.MULTILINE))
    codes = {value for name, value in vars(errors).items() if name.isupper() and isinstance(value, str)}
    assert listed == codes | {errors.http_error(0).replace("0", "<status>")}


def test_the_differences_table_has_its_columns() -> None:
    section = _section("Differences from connector-http")
    assert "| Behaviour | connector-http | ours | Why |" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Behaviour")]
    assert len(rows) >= 10
    assert all(line.count(" | ") >= 3 for line in rows)


def test_the_pool_limits_table_lists_every_setting_with_its_default() -> None:
    row = re.compile(r"^\| `CONNECTOR_HTTP_([A-Z_]+)` \| `([0-9.]+)` \|", re.MULTILINE)
    rows = row.findall(_section("Connection handling"))
    defaults = {name: field.default for name, field in PoolSettings.model_fields.items()}
    assert {name.lower(): float(value) for name, value in rows} == defaults
