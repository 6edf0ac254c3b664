"""Installing fixture connector packages the way users install community connectors (pip)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "community"
SDK_FIXTURES = FIXTURES.parent / "sdk"  # connector packages built on the SDK


def install_fixture_packages(target: Path, names: list[str] | None = None, root: Path = FIXTURES) -> Path:
    """``pip install --target`` the fixture packages of ``root`` (offline, no build isolation, no
    dependencies); return the site dir."""
    sources = sorted(p for p in root.iterdir() if (p / "pyproject.toml").is_file())
    if names is not None:
        sources = [p for p in sources if p.name in names]
    # Build from copies: setuptools leaves build/ and *.egg-info next to the sources, which would go
    # stale between runs and be shared by concurrent sessions.
    copies = target.parent / f"{target.name}-sources"
    packages = []
    for source in sources:
        copy = copies / source.name
        shutil.copytree(source, copy, dirs_exist_ok=False, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        packages.append(copy)
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
