"""What the CRI plugin needs of pod networking: a Protocol that the CNI manager fills."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class PodNetworkRequest:
    sandbox_id: str
    name: str
    namespace: str
    uid: str
    # hostPort mappings: {"hostPort", "containerPort", "protocol" ("tcp"/"udp"/"sctp"), "hostIP"}
    port_mappings: list[dict[str, object]] = field(default_factory=list)
    dns: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PodNetworkResult:
    netns: str  # the namespace's path, joined by the pause container
    ips: list[str]


class PodNetwork(Protocol):
    async def not_ready(self) -> str | None:
        """None when pods can be networked; otherwise why not (shown in the CRI Status)."""
        ...

    async def setup(self, req: PodNetworkRequest) -> PodNetworkResult:
        """A new network namespace for the pod, wired by the configured plugins."""
        ...

    async def teardown(self, req: PodNetworkRequest, netns: str) -> None:
        """Idempotent: releases what setup made even if the namespace is already gone."""
        ...

    async def sweep(self, known: set[str]) -> None:
        """At start: remove namespaces (and their networks) of pods that no longer exist."""
        ...

