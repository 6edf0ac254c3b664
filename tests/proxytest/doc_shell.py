"""The shell blocks of the docs, for the tests that run them as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_BLOCK = re.compile(r"^( *)```(?:sh|bash|shell|console)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def shell_blocks(page: str | Path, *, section: str | None = None) -> list[str]:
    """The ``sh`` blocks of ``page`` (relative to the repository), in order, dedented; only those of
    the ``## section`` when given."""
    text = (ROOT / page).read_text(encoding="utf-8")
    if section is not None:
        start = text.index(f"\n## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end != -1 else len(text)]
    blocks = []
    for match in SHELL_BLOCK.finditer(text):
        indent = len(match.group(1))
        blocks.append("".join(line[indent:] for line in match.group(2).splitlines(keepends=True)))
    return blocks


def commands(block: str) -> list[str]:
    """Shell commands of a block: continuation lines joined, comment lines and trailing comments dropped."""
    joined = block.replace("\\\n", " ")
    lines = [line.split(" #")[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]
