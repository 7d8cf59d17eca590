"""Typed CNI failures, each one of the runtime's closed error set so the CRI layer maps them once."""
from __future__ import annotations

import json
from typing import Any

from runtime.errors import FailedPrecondition, Internal, InvalidArgument

# The spec's reserved error codes (1-99); plugins use 100+ for their own.
WELL_KNOWN_CODES = {
    1: "incompatible CNI version",
    2: "unsupported field in network configuration",
    3: "container unknown or does not exist",
    4: "invalid necessary environment variables",
    5: "I/O failure",
    6: "failed to decode content",
    7: "invalid network config",
    11: "try again later",
}


class NetworkNotReady(FailedPrecondition):
    """No usable network configuration: the CRI Status reports NetworkReady=false, with `reason`
    (containerd's word for it) and `detail` saying what is missing."""

    reason = "NetworkPluginNotReady"

    def __init__(self, detail: str) -> None:
        super().__init__(f"network not ready: {detail}")
        self.detail = detail


class InvalidNetworkConfig(InvalidArgument):
    """A conf file or a cached configuration that is not a valid CNI network configuration."""


class PluginNotFound(FailedPrecondition):
    def __init__(self, plugin: str, bin_dirs: list[str]) -> None:
        super().__init__(f"failed to find plugin {plugin!r} in path {bin_dirs}")
        self.plugin = plugin


class PluginError(Internal):
    """A plugin exited non-zero; `code`/`msg`/`details` are its JSON error (or its stderr)."""

    def __init__(self, plugin: str, command: str, cni_code: int, msg: str, details: str = "") -> None:
        text = f"plugin type={plugin!r} failed ({command.lower()}): {msg}"
        if details:
            text += f"; {details}"
        if cni_code in WELL_KNOWN_CODES:
            text += f" (CNI error {cni_code}: {WELL_KNOWN_CODES[cni_code]})"
        super().__init__(text)
        self.plugin = plugin
        self.command = command
        self.cni_code = cni_code
        self.msg = msg
        self.details = details

    @classmethod
    def from_output(cls, plugin: str, command: str, returncode: int, stdout: bytes,
                    stderr: bytes) -> PluginError:
        """The error a plugin printed on stdout ({code, msg, details}), else its stderr."""
        err: Any = None
        try:
            err = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            err = None
        if isinstance(err, dict) and ("msg" in err or "code" in err):
            code = err.get("code")
            return cls(plugin, command, code if isinstance(code, int) else 0,
                       str(err.get("msg", "")), str(err.get("details", "") or ""))
        text = (stderr or stdout).decode(errors="replace").strip()
        return cls(plugin, command, 0, text or f"exited with status {returncode}")
