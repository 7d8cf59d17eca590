"""The attachment cache: what an ADD was run with, so its DEL can be run the same way later.

One file per (network, container id, interface), as libcni keeps under /var/lib/cni/results, holding
the whole network list as it was at ADD time, the namespace path, the CNI_ARGS, the capability
arguments (port mappings...) and the ADD's result. The entry is written *before* the ADD (without a
result) and again after each plugin of the list: a runtime that crashes half-way through an ADD still finds what to DEL,
and a DEL after a crash or a config change releases exactly what was allocated (host-local's IPs,
portmap's rules) even if the conf dir has changed or is gone.

Files are written to a temp name, fsynced and renamed, so a reader sees an old or a new entry, never half.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.cri.cni.config import NetworkConfigList, conflist_from_dict
from runtime.cri.cni.errors import InvalidNetworkConfig
from runtime.cri.cni.invoke import RuntimeConf

KIND = "pyengineCNICacheV1"


@dataclass(frozen=True)
class Attachment:
    network: NetworkConfigList
    rt: RuntimeConf
    result: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.network.name, self.rt.container_id, self.rt.ifname)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": KIND,
            "containerId": self.rt.container_id,
            "networkName": self.network.name,
            "ifName": self.rt.ifname,
            "netns": self.rt.netns,
            "config": self.network.raw,
            "configSource": self.network.source,
            "cniArgs": [list(a) for a in self.rt.args],
            "capabilityArgs": self.rt.capability_args,
        }
        if self.result is not None:
            doc["result"] = self.result
        return doc

    @classmethod
    def from_json(cls, doc: Any, where: str) -> Attachment:
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise InvalidNetworkConfig(f"{where}: not a CNI cache entry")
        try:
            rt = RuntimeConf(container_id=str(doc["containerId"]), netns=str(doc.get("netns") or ""),
                             ifname=str(doc["ifName"]),
                             args=tuple((str(k), str(v)) for k, v in doc.get("cniArgs") or []),
                             capability_args=dict(doc.get("capabilityArgs") or {}))
            net = conflist_from_dict(doc["config"], str(doc.get("configSource") or where))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidNetworkConfig(f"{where}: broken CNI cache entry ({exc})") from None
        result = doc.get("result")
        return cls(net, rt, result if isinstance(result, dict) else None)


class AttachmentCache:
    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def path(self, network: str, container_id: str, ifname: str) -> Path:
        return self.root / f"{network}-{container_id}-{ifname}"

    def save(self, entry: Attachment) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.path(*entry.key)
        tmp = final.with_name(f".{final.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(entry.to_json(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)

    def load(self, network: str, container_id: str, ifname: str) -> Attachment | None:
        path = self.path(network, container_id, ifname)
        try:
            return Attachment.from_json(json.loads(path.read_bytes()), str(path))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise InvalidNetworkConfig(f"{path}: broken CNI cache entry ({exc})") from None

    def delete(self, entry: Attachment) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(*entry.key).unlink()

    def entries(self, container_id: str | None = None) -> list[Attachment]:
        """Cached attachments (of one container if given), sorted by file name.

        Unreadable files are skipped: one corrupt entry must not block the teardown of every pod.
        """
        if not self.root.is_dir():
            return []
        found: list[Attachment] = []
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or (container_id and f"-{container_id}-" not in path.name):
                continue
            try:
                entry = Attachment.from_json(json.loads(path.read_bytes()), str(path))
            except (OSError, ValueError, InvalidNetworkConfig):
                continue
            if container_id is None or entry.rt.container_id == container_id:
                found.append(entry)
        return found

    def container_ids(self) -> set[str]:
        return {entry.rt.container_id for entry in self.entries()}
