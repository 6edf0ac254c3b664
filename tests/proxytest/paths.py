"""Paths of the repository the tests read (chart, CRD, examples), independent of a test's depth."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "connector-proxy"
CRD = CHART / "crds" / "connectors.spiffworkflow.org.yaml"
EXAMPLES = ROOT / "examples"
