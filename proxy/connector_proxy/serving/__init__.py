"""Serving the app: the process model of ``connector-proxy serve`` and package hot reload."""
