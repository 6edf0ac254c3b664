"""The chart's alerts: valid for Prometheus (``promtool check rules``) and doing what they say
(``promtool test rules`` on tests/chart/prometheus/rules_test.yaml). Debian's ``prometheus`` package
provides promtool (``make test-packages``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from chart.helm import CHART

RULES = CHART / "files" / "prometheus-rules.yaml"
UNIT_TESTS = Path(__file__).parent / "prometheus" / "rules_test.yaml"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: make test-packages (Debian's prometheus package)", pytrace=False)
    return found


def test_the_rules_are_valid() -> None:
    checked = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout


def test_the_alerts_fire_when_and_only_when_they_should() -> None:
    tested = subprocess.run(
        [_promtool(), "test", "rules", UNIT_TESTS.name], cwd=UNIT_TESTS.parent, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
