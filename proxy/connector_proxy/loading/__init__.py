"""Loading connectors into a registry: community packages, SDK connectors, the embedded set."""
