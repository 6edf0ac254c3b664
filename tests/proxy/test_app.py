"""The app factory's module: what building an embedded proxy loads."""

from __future__ import annotations

import subprocess
import sys


def test_an_embedded_proxy_never_imports_the_kubernetes_client() -> None:
    """The Kubernetes client is most of a cold start's imports (about 900 modules): embedded mode and
    connector workloads do without it; Kubernetes mode imports it when it starts following."""
    script = (
        "import sys\n"
        "from connector_proxy.app import create_app\n"
        "from connector_proxy.settings import Settings\n"
        "create_app(Settings())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('kubernetes')}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
