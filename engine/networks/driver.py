"""What the engine asks of a network stack: wire a namespace to networks, with ports, and undo it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from engine.networks.model import Endpoint, Network, PublishedPort


@dataclass
class Attachment:
    """One container's set-up: its namespace, endpoints and published ports."""

    container_id: str
    container_name: str
    netns: str
    endpoints: list[tuple[Network, Endpoint]]
    ports: list[PublishedPort] = field(default_factory=list)
    hostname: str | None = None  # a name the network's DNS answers too, as dockerd's does


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str
    address: str  # CIDR, e.g. 172.18.0.2/16
    gateway: str


class NetworkDriver(Protocol):
    name: str

    async def setup(self, a: Attachment) -> dict[str, Interface]:
        """Configure the namespace; the interface made for each network id."""
        ...

    async def teardown(self, a: Attachment) -> None:
        """Undo setup() (idempotent: parts already gone are not an error)."""
        ...

    async def rename(self, container_id: str, old: str, new: str) -> None:
        """A running container's new name in its networks' DNS."""
        ...

    def kept(self, net: Network) -> bool:
        """Whether the network's bridge and rules are kept up past its last container's teardown."""
        ...

    async def let_go(self, net: Network) -> None:
        """Keep them no longer: the next teardown that leaves the network without containers removes them."""
        ...
