"""kopf operator turning Connector resources into running, discovered connector workloads."""
