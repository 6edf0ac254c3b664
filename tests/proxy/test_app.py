"""The app factory's module: what building an embedded proxy loads."""

from __future__ import annotations

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
