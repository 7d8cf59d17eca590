"""Docker image reference parsing for the runtime's clients.

Pure functions with no daemon state: clients normalise names with the very
grammar the runtime stores images under, so both sides agree on every name.
"""
from runtime.reference import DEFAULT_TAG, Reference, familiar, parse

__all__ = ["DEFAULT_TAG", "Reference", "familiar", "parse"]
