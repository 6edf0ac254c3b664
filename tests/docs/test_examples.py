"""Every Python example in the docs runs as written: a page's blocks in order, in one fresh
namespace per page (a later block may use what an earlier one defined, as a reader would), and
without this module's `from __future__` imports."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
PAGES = {
    str(page.relative_to(ROOT)): [textwrap.dedent(m.group(2)) for m in BLOCK.finditer(page.read_text("utf-8"))]
    for page in sorted([*ROOT.glob("docs/*.md"), *ROOT.glob("*.md"), *ROOT.glob("connectors/*/README.md")])
}
EXAMPLES = {page: blocks for page, blocks in PAGES.items() if blocks}


def test_the_docs_have_examples() -> None:
    assert {"docs/connectors.md", "docs/auths.md"} <= set(EXAMPLES)


@pytest.mark.parametrize("page", sorted(EXAMPLES))
def test_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for index, source in enumerate(EXAMPLES[page]):
        exec(compile(source, f"<{page} example {index}>", "exec", dont_inherit=True), namespace)
