"""Kubernetes mode: following Connector resources and forwarding their commands to the workloads."""
