"""Connector proxy for spiff-arena: catalog, dispatch and connector runtime."""

__version__ = "0.1.0"
