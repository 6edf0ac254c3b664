"""Installing fixture connector packages the way users install community connectors (pip)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "community"


def install_fixture_packages(target: Path, names: list[str] | None = None) -> Path:
    """``pip install --target`` the fixture packages (offline, no build isolation); return the site dir."""
    packages = sorted(p for p in FIXTURES.iterdir() if (p / "pyproject.toml").is_file())
    if names is not None:
        packages = [p for p in packages if p.name in names]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-index",
        "--no-build-isolation",
        "--target",
        str(target),
        *[str(p) for p in packages],
    ]
    subprocess.run(command, check=True, timeout=300)
    return target
