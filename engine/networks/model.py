"""The engine's network records: networks, and each container's endpoint on one."""
from __future__ import annotations

from pydantic import BaseModel, Field

# Docker's built-in networks. Their names are reserved: no user network may take them.
BRIDGE, HOST, NONE = "bridge", "host", "none"
BUILTIN = (BRIDGE, HOST, NONE)


class Network(BaseModel):
    id: str  # 64 hex, as Docker's
    name: str
    driver: str  # "bridge", "host" or "null"
    created: float
    subnet: str | None = None  # CIDR; None for host and null
    gateway: str | None = None
    ip_range: str | None = None  # containers' addresses come from here (within the subnet)
    # EnableIPv6: the network's IPv6 subnet (given, or a /64 of the engine's unique local prefix), as the IPv4 one.
    subnet6: str | None = None
    gateway6: str | None = None
    ip_range6: str | None = None
    # The engine chose the subnet (none was given): dockerd then takes no container address from the user.
    subnet_picked: bool = False
    subnet6_picked: bool = False
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    options: dict[str, str] = Field(default_factory=dict)
    # IPAM.Options as created: none are honoured (a non-empty one is refused), but dockerd shows the {} the docker
    # CLI sends apart from the null of a request without it.
    ipam_options: dict[str, str] | None = None
    interface: str | None = None  # the Linux bridge of a bridge network
    dns: bool = False  # containers resolve each other by name (user-defined bridges, as in Docker)

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN

    @property
    def ipv6(self) -> bool:
        return self.subnet6 is not None


class Endpoint(BaseModel):
    """A container's place on a network; kept while the container exists, so it keeps its address."""

    network_id: str
    container_id: str
    id: str  # 64 hex EndpointID
    ip: str | None = None  # None until the container first starts, unless asked for (static)
    static_ip: bool = False
    ip6: str | None = None  # on an IPv6 network, as `ip`
    static_ip6: bool = False
    mac: str | None = None
    static_mac: str | None = None  # asked for at create or connect; otherwise the driver picks one per start
    aliases: list[str] = Field(default_factory=list)
    # Legacy links on this network, "target:alias": /etc/hosts entries of this container for the target's address.
    links: list[str] = Field(default_factory=list)
    interface: str | None = None  # eth0, eth1... inside the container, while it runs


class PublishedPort(BaseModel):
    host_ip: str  # "" for every address
    host_port: int
    container_port: int
    protocol: str  # "tcp" or "udp"
    count: int = 1  # a range of consecutive ports on both sides


class Sandbox(BaseModel):
    """A running container's network namespace and what was set up in it (kept across engine restarts)."""

    container_id: str
    netns: str
    ports: list[PublishedPort] = Field(default_factory=list)
