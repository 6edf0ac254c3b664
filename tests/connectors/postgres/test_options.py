"""The connector loads without its driver: psycopg and libpq load with the first call."""

from __future__ import annotations

import subprocess
import sys


def test_a_proxy_serving_the_connector_loads_psycopg_only_when_called() -> None:
    """psycopg with libpq is about 150 ms and 9 MiB of a proxy's start-up that no call needed yet."""
    script = (
        "import sys\n"
        "from connector_proxy.app import create_app\n"
        "from connector_proxy.settings import Settings\n"
        "app = create_app(Settings())\n"
        "assert 'pg/Query' in app.state.proxy.registry.commands\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool', 'psycopg_binary')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
