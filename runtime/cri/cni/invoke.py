"""Running CNI plugins, per the CNI spec's execution protocol.

A plugin is an executable found by its `type` in the bin dirs. The runtime hands it:
- the environment: CNI_COMMAND (ADD, DEL, CHECK, VERSION), CNI_CONTAINERID, CNI_NETNS (the namespace
  path; empty on a DEL whose namespace is gone), CNI_IFNAME, CNI_ARGS (`K=V;K=V`), CNI_PATH (the bin
  dirs, for plugins that delegate, as bridge does to its IPAM plugin);
- stdin: that plugin's object from the list, with the list's `name` and `cniVersion` injected, the
  previous plugin's result as `prevResult` (ADD: the chain so far; DEL and CHECK: the cached result of
  the ADD, from 0.4.0 on), and `runtimeConfig` holding only the capability arguments the plugin
  declares in `capabilities` (portMappings, dns, ...).
A plugin answers on stdout: the result (ADD) or nothing, and exit 0; or a JSON error {code, msg,
details} and a non-zero exit, raised here as PluginError.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.cri.cni.config import NetworkConfigList, check_ifname, check_name, find_plugin, version_at_least
from runtime.cri.cni.errors import InvalidNetworkConfig, PluginError

# iptables and ip are looked up on PATH by the plugins; a daemon started with an empty PATH still finds them.
_FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class RuntimeConf:
    """The per-attachment arguments of one invocation (libcni's RuntimeConf)."""

    container_id: str
    netns: str
    ifname: str
    args: tuple[tuple[str, str], ...] = ()
    capability_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("container id", self.container_id)
        check_ifname(self.ifname)
        for key, value in self.args:
            if any(c in key + value for c in ";="):
                raise InvalidNetworkConfig(f"CNI argument {key}={value!r} may not contain ';' or '='")

    def cni_args(self) -> str:
        return ";".join(f"{k}={v}" for k, v in self.args)


def plugin_stdin(net: NetworkConfigList, plugin: dict[str, Any], prev_result: dict[str, Any] | None,
                 rt: RuntimeConf) -> bytes:
    conf = dict(plugin)
    conf["name"] = net.name
    conf["cniVersion"] = net.cni_version
    if prev_result is not None:
        conf["prevResult"] = prev_result
    else:
        conf.pop("prevResult", None)
    declared = plugin.get("capabilities") or {}
    runtime_config = {k: v for k, v in rt.capability_args.items() if declared.get(k)}
    if runtime_config:
        conf["runtimeConfig"] = runtime_config
    return json.dumps(conf).encode()


def plugin_env(command: str, rt: RuntimeConf, bin_dirs: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.setdefault("PATH", _FALLBACK_PATH)
    env.update({
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": rt.container_id,
        "CNI_NETNS": rt.netns,
        "CNI_IFNAME": rt.ifname,
        "CNI_ARGS": rt.cni_args(),
        "CNI_PATH": os.pathsep.join(bin_dirs),
    })
    return env


async def exec_plugin(path: str, plugin_type: str, command: str, stdin: bytes,
                      env: dict[str, str]) -> bytes:
    """Run one plugin to completion; its stdout, or PluginError. Cancelling kills the plugin."""
    try:
        proc = await asyncio.create_subprocess_exec(
            path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
    except OSError as exc:
        raise PluginError(plugin_type, command, 0, f"cannot run {path}: {exc.strerror}") from None
    try:
        out, err = await proc.communicate(stdin)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise PluginError.from_output(plugin_type, command, proc.returncode or 0, out, err)
    return out


class Invoker:
    """Runs whole network lists: ADD in order threading prevResult, DEL in reverse, CHECK."""

    def __init__(self, bin_dirs: list[str]) -> None:
        self.bin_dirs = list(bin_dirs)

    async def _run(self, net: NetworkConfigList, plugin: dict[str, Any], command: str,
                   prev_result: dict[str, Any] | None, rt: RuntimeConf) -> bytes:
        kind = str(plugin["type"])
        path = find_plugin(kind, self.bin_dirs)
        stdin = plugin_stdin(net, plugin, prev_result, rt)
        return await exec_plugin(path, kind, command, stdin, plugin_env(command, rt, self.bin_dirs))

    async def add(self, net: NetworkConfigList, rt: RuntimeConf,
                  progress: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> dict[str, Any]:
        """ADD each plugin in order; `progress` gets each plugin's result (the chain so far), so a
        DEL after a failure half-way can hand the plugins that did run what they made."""
        result: dict[str, Any] | None = None
        for plugin in net.plugins:
            out = await self._run(net, plugin, "ADD", result, rt)
            try:
                doc = json.loads(out)
            except ValueError:
                raise PluginError(str(plugin["type"]), "ADD", 6,
                                  f"result is not JSON: {out[:200].decode(errors='replace')!r}") from None
            if not isinstance(doc, dict):
                raise PluginError(str(plugin["type"]), "ADD", 6, "result is not a JSON object")
            result = doc
            if progress is not None:
                await progress(result)
        if result is None:
            raise InvalidNetworkConfig(f"network {net.name}: no plugins")
        return result

    async def delete(self, net: NetworkConfigList, rt: RuntimeConf,
                     cached_result: dict[str, Any] | None) -> None:
        # DEL got the ADD's result as prevResult in 0.4.0; earlier plugins do not expect one.
        prev = cached_result if version_at_least(net.cni_version, "0.4.0") else None
        for plugin in reversed(net.plugins):
            await self._run(net, plugin, "DEL", prev, rt)

    async def check(self, net: NetworkConfigList, rt: RuntimeConf, cached_result: dict[str, Any]) -> None:
        """CHECK exists from 0.4.0 on; a list with disableCheck passes as it is."""
        if not version_at_least(net.cni_version, "0.4.0"):
            raise InvalidNetworkConfig(
                f"network {net.name}: configuration version {net.cni_version!r} does not support the CHECK command")
        if net.disable_check:
            return
        for plugin in net.plugins:
            await self._run(net, plugin, "CHECK", cached_result, rt)
