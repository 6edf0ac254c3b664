"""The app factory's module: what building an embedded proxy loads."""

from __future__ import annotations

import subprocess
import sys

from proxytest.imports import BUILD_EMBEDDED_PROXY, packages_imported_by


def test_an_embedded_proxy_never_imports_the_kubernetes_client() -> None:
    """The Kubernetes client is most of a cold start's imports (about 900 modules): embedded mode and
    connector workloads do without it; Kubernetes mode imports it when it starts following."""
    loaded = packages_imported_by(BUILD_EMBEDDED_PROXY)
    assert "connector_proxy" in loaded and not {name for name in loaded if name.startswith("kubernetes")}


def test_an_embedded_proxy_of_sdk_connectors_imports_no_oauth_jose_or_docstring_library() -> None:
    """authlib with joserfc (the OAuth flow, the workloads' caller check) and docstring_parser (community
    classes) are imported when first needed, not by every start-up."""
    loaded = packages_imported_by(BUILD_EMBEDDED_PROXY)
    assert "spiff_connector_http" in loaded
    assert loaded.isdisjoint({"authlib", "joserfc", "docstring_parser"})


def test_fastapi_adds_no_telemetry_of_its_own_even_with_a_global_tracer_provider() -> None:
    """The proxy's spans are its own: a global provider (set by anything else in the process) must not
    give every request a second span from FastAPI's native instrumentation."""
    code = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        f"{BUILD_EMBEDDED_PROXY}"
        "from starlette.testclient import TestClient\n"
        "with TestClient(app) as client:\n"
        "    codes = [client.get(path).status_code for path in ('/v1/commands', '/openapi.json', '/v1/nowhere')]\n"
        "print(codes, len(exporter.get_finished_spans()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["[200,", "200,", "404]", "0"]
