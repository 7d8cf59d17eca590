"""Prometheus metrics of the runtime (docs/operations.md, "Metrics")."""
