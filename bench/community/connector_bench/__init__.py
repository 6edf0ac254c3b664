"""A community-style connector package for the benchmarks (``CONNECTOR_PROXY_CONNECTOR_PATHS``)."""
