"""Prometheus metrics of the engine (docs/operations.md, "Metrics")."""
