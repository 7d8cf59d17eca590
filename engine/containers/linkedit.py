"""What rename, `docker rm --link` and a linked container's start do to legacy links, as dockerd's link graph does.

dockerd keeps links as a graph of names (`/parent/alias` -> the linked container) and shows each
parent's `HostConfig.Links` from it, so a rename is seen at once: renaming a linked container
changes the `/name` its parents show, renaming a parent moves its links to `/newname/alias`. Here
the links live in each parent's HostConfig as dockerd shows them, and a rename rewrites them there.
`rm --link parent/alias` removes the link; for a running parent dockerd then refreshes its sandbox
(libnetwork's Refresh), which writes /etc/hosts again without the link's entry. A linked container's start
writes its running parents' /etc/hosts again with its new address. The link's variables stay in the running
process, as they must.
"""
from __future__ import annotations

from engine.containers import links
from engine.containers.live import Lives
from engine.containers.store import Container, ContainerStore
from engine.errors import NotFound
from engine.networks.etcfiles import EtcConfig
from engine.networks.service import NetworkService


def renamed(stored: list[str], old: str, new: str) -> list[str]:
    """HostConfig.Links (`/name:/parent/alias`) after container `old` became `new`, as linked and as parent."""
    out = []
    for link in stored:
        child, _, full = link.partition(":")
        parent, _, alias = full.rpartition("/")
        child = f"/{new}" if child == f"/{old}" else child
        parent = f"/{new}" if parent == f"/{old}" else parent
        out.append(f"{child}:{parent}/{alias}")
    return out


class LinkEditor:
    def __init__(self, store: ContainerStore, lives: Lives, networks: NetworkService) -> None:
        self._store = store
        self._lives = lives
        self._networks = networks

    async def renamed(self, old: str, new: str) -> None:
        """After a rename: every container whose links name `old` names `new`."""
        for other in self._store.all():
            if renamed(other.host_config.get("Links") or [], old, new) == (other.host_config.get("Links") or []):
                continue
            async with self._lives.of(other.id).lock:
                current = self._store.find(other.id)
                if current is not None:
                    current.host_config = {**current.host_config,
                                           "Links": renamed(current.host_config.get("Links") or [], old, new)}
                    await self._store.save(current)

    async def remove(self, link: str) -> None:
        """`docker rm --link parent/alias`: the parent forgets the link; a running one's /etc/hosts follows."""
        if "/" not in link.strip("/") and self._store.find(link) is None:
            raise NotFound(f"No such container: {link}")  # dockerd looks the name up before reading it as a link
        parent_name, full = links.parent_of(link)
        parent = self._store.find(parent_name)
        kept = links.without(parent.host_config.get("Links") or [], full) if parent is not None else []
        if parent is None or len(kept) == len(parent.host_config.get("Links") or []):
            raise NotFound(f"No such container: {link}")
        async with self._lives.of(parent.id).lock:
            parent.host_config = {**parent.host_config, "Links": kept or None}
            await self._store.save(parent)
            if parent.state.running and self._networks.wired(parent.id):
                await self._refresh(parent)

    async def started(self, child: Container) -> None:
        """A linked container's new run: the running containers linking to it get /etc/hosts anew with its new
        address, as libnetwork's parent update gives them (their link variables keep the old one, as dockerd's)."""
        named = f"/{child.name}"
        for parent in self._store.all():
            links_to = any(link.partition(":")[0] == named for link in parent.host_config.get("Links") or [])
            if links_to and parent.state.running and parent.id != child.id and self._networks.wired(parent.id):
                # Without the parent's lock (a stop may hold it for its whole timeout): the files are written
                # whole from the records, whoever writes them last.
                await self._refresh(parent)

    async def _refresh(self, parent: Container) -> None:
        linked = links.resolve(parent, self._store.find, self._networks.bridge_address, strict=False)
        await self._networks.files.refresh(parent.id, EtcConfig.of(parent.id, parent.config, parent.host_config,
                                                                 linked.hosts))
