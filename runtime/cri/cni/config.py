"""CNI network configuration: the conf dir, conflists, and where the plugin binaries are.

As libcni and containerd's go-cni read a conf dir: files ending in `.conflist`, `.conf` or `.json`,
sorted lexically; the first one is the pod network. A `.conflist` is a list (`name`, `cniVersion`,
`plugins`, optional `disableCheck`); a `.conf`/`.json` holds one plugin's configuration and is wrapped
into a list of one. The first file decides: if it is broken, the network is not ready (with the file
named), rather than silently falling through to a later file the administrator did not mean.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.cri.cni.errors import InvalidNetworkConfig, NetworkNotReady, PluginNotFound

DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
CONF_EXTENSIONS = (".conf", ".conflist", ".json")
MAX_CONF_SIZE = 2 * 1024 * 1024

# Result formats this runtime reads: 0.1.0/0.2.0 (ip4/ip6) and 0.3.0 onwards (interfaces/ips).
SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0")

# libcni's rules for names that end up in file names, iptables comments and interface names.
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_IFNAME_MAX = 15


def version_at_least(version: str, minimum: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in v.split("."))
        except ValueError:
            raise InvalidNetworkConfig(f"invalid cniVersion {v!r}") from None
    return parts(version) >= parts(minimum)


def check_name(kind: str, value: str) -> None:
    if not value or not _NAME_RE.match(value):
        raise InvalidNetworkConfig(f"invalid {kind} {value!r}: must match {_NAME_RE.pattern}")


def check_ifname(value: str) -> None:
    if (not value or len(value) > _IFNAME_MAX or value in (".", "..")
            or any(c in value for c in "/:") or any(c.isspace() for c in value)):
        raise InvalidNetworkConfig(f"invalid interface name {value!r}")


@dataclass(frozen=True)
class NetworkConfigList:
    """One network: its plugins run in order on ADD and in reverse on DEL."""

    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def types(self) -> list[str]:
        return [str(p["type"]) for p in self.plugins]

    def capabilities(self) -> set[str]:
        caps: set[str] = set()
        for plugin in self.plugins:
            caps.update(k for k, on in (plugin.get("capabilities") or {}).items() if on)
        return caps


def _check_version(version: Any, where: str) -> str:
    if not isinstance(version, str) or not version:
        raise InvalidNetworkConfig(f"{where}: cniVersion is required")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidNetworkConfig(
            f"{where}: cniVersion {version!r} is not supported (supported: {', '.join(SUPPORTED_VERSIONS)})")
    return version


def _load_json(data: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidNetworkConfig(f"{where}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidNetworkConfig(f"{where}: a network configuration is a JSON object")
    return doc


def conflist_from_dict(doc: dict[str, Any], source: str = "") -> NetworkConfigList:
    where = source or "network configuration list"
    name = doc.get("name")
    if not isinstance(name, str):
        raise InvalidNetworkConfig(f"{where}: name is required")
    check_name("network name", name)
    version = _check_version(doc.get("cniVersion"), where)
    plugins = doc.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise InvalidNetworkConfig(f"{where}: plugins must be a non-empty list")
    for i, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin["type"]:
            raise InvalidNetworkConfig(f"{where}: plugin {i} has no type")
        if "/" in plugin["type"]:
            raise InvalidNetworkConfig(f"{where}: plugin type {plugin['type']!r} is a name, not a path")
        caps = plugin.get("capabilities")
        if caps is not None and not isinstance(caps, dict):
            raise InvalidNetworkConfig(f"{where}: plugin {plugin['type']}: capabilities must be an object")
    disable = doc.get("disableCheck", False)
    if not isinstance(disable, bool):
        raise InvalidNetworkConfig(f"{where}: disableCheck must be a boolean")
    return NetworkConfigList(name=name, cni_version=version, plugins=tuple(plugins),
                             disable_check=disable, source=source, raw=doc)


def parse_conflist(data: bytes, source: str = "") -> NetworkConfigList:
    return conflist_from_dict(_load_json(data, source or "conflist"), source)


def parse_conf(data: bytes, source: str = "") -> NetworkConfigList:
    """A single plugin's configuration, wrapped as a list of one (libcni's ConfListFromConf)."""
    where = source or "conf"
    doc = _load_json(data, where)
    if not isinstance(doc.get("type"), str) or not doc["type"]:
        # Also catches a conflist saved under a .conf name, as go-cni does.
        raise InvalidNetworkConfig(f"{where}: network type not found")
    wrapped = {"name": doc.get("name"), "cniVersion": doc.get("cniVersion"), "plugins": [doc]}
    return conflist_from_dict(wrapped, source)


def conf_files(conf_dir: str) -> list[Path]:
    root = Path(conf_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix in CONF_EXTENSIONS and p.is_file())


def load_conf_file(path: Path) -> NetworkConfigList:
    if path.stat().st_size > MAX_CONF_SIZE:
        raise InvalidNetworkConfig(f"{path}: larger than {MAX_CONF_SIZE} bytes")
    data = path.read_bytes()
    return parse_conflist(data, str(path)) if path.suffix == ".conflist" else parse_conf(data, str(path))


def load_default_network(conf_dir: str) -> NetworkConfigList:
    """The pod network: the first conf file in lexical order, or NetworkNotReady saying why not."""
    files = conf_files(conf_dir)
    if not files:
        raise NetworkNotReady(f"no network config found in {conf_dir}")
    try:
        return load_conf_file(files[0])
    except InvalidNetworkConfig as exc:
        raise NetworkNotReady(exc.message) from None
    except OSError as exc:
        raise NetworkNotReady(f"cannot read {files[0]}: {exc.strerror}") from None


def find_plugin(plugin: str, bin_dirs: list[str]) -> str:
    for d in bin_dirs:
        path = os.path.join(d, plugin)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise PluginNotFound(plugin, bin_dirs)


# containerd sets up `lo` with its own one-plugin network before the pod network.
LOOPBACK = conflist_from_dict(
    {"cniVersion": "1.0.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]})
