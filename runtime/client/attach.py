"""Attaching to a task's process: its output, its stdin, its terminal size (engine and pyctr use it).

The protocol (conmon's attach socket and ctl fifo) is taught in runtime/stdio/attach.py, which
the runtime's shim shares; this is the clients' door to it.
"""
from runtime.stdio.attach import STDERR, STDOUT, Attachment, attach, resize

__all__ = ["STDERR", "STDOUT", "Attachment", "attach", "resize"]
