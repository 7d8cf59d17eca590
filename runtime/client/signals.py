"""Signal names and numbers for the runtime's clients (the engine, pyctr).

The parser lives in runtime/signals.py, which the runtime's API uses too: a signal a client
accepts is one the runtime accepts, with the same "Invalid signal: <value>" when it is not.
"""
from runtime.signals import parse_signal

__all__ = ["parse_signal"]
