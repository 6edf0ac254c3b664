"""What a fresh interpreter has imported after running some code (start-up cost checks)."""

from __future__ import annotations

import json
import subprocess
import sys

BUILD_EMBEDDED_PROXY = (
    "from connector_proxy.app import create_app\n"
    "from connector_proxy.settings import Settings\n"
    "app = create_app(Settings())\n"
)


def packages_imported_by(code: str) -> set[str]:
    """The top-level packages in ``sys.modules`` once ``code`` ran in a new ``python -c``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return set(found)
