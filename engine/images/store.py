"""Images as dockerd presents them, built from the runtime's image records and content.

The runtime knows names pointing at manifests or indexes; Docker knows images
identified by their config digest, each carrying any number of names. This
module does that translation and the name bookkeeping (tag, untag, delete,
prune) with Docker's rules on top of the runtime's plain records.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import platform
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.errors import Conflict, InvalidArgument
from engine.images import manifests
from engine.images.lookup import Match, display_name, find
from engine.images.manifests import INDEX_TYPES
from engine.images.model import (
    DANGLING_PREFIX,
    DIGEST_REMOVED_LABEL,
    REMOVED_LABEL,
    TAGGED_LABEL,
    LocalImage,
    Record,
    chain_ids,
    repo_digests,
    short_id,
)
from engine.images.parents import Parents
from engine.images.sizes import LayerSizes
from engine.events import CONTAINER, Event, EventBus
from runtime.client import NotFound, RuntimeAPI, RuntimeError_
from runtime.client.records import Image as RuntimeImage
from runtime.client.reference import familiar, parse

log = logging.getLogger("engine.images")

_HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


class _BlobCache:
    """Parsed manifests, indexes and configs by digest: content never changes under its digest.

    Sized for the build cache too: every build step is an image of two small documents."""

    def __init__(self, limit: int = 8192) -> None:
        self._docs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._limit = limit

    def get(self, digest: str) -> dict[str, Any] | None:
        doc = self._docs.get(digest)
        if doc is not None:
            self._docs.move_to_end(digest)
        return doc

    def put(self, digest: str, doc: dict[str, Any]) -> None:
        self._docs[digest] = doc
        if len(self._docs) > self._limit:
            self._docs.popitem(last=False)


class ImageUsers(Protocol):
    """Which of the engine's containers use an image: the engine's own records answer, not the runtime's."""

    def image_users(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) of every container created from `image_id`."""
        ...

    def images_in_use(self) -> set[str]:
        ...


class Departing(Protocol):
    """Containers gone from the engine's records whose runtime side is still being removed."""

    async def settled(self) -> None:
        """Once those removals have ended: until then their snapshots keep the layers they sit on."""
        ...


@dataclass
class Registries:
    """Where pulls go: dockerd's registry-mirrors (Docker Hub's only) and insecure registries, and how many
    layers a pull downloads (a push uploads) at once. A reload changes them in place."""

    mirrors: dict[str, list[str]] = field(default_factory=dict)
    insecure: list[str] = field(default_factory=list)
    max_downloads: int = 3
    max_uploads: int = 5


class ImageService:
    def __init__(self, runtime: RuntimeAPI, events: EventBus, users: ImageUsers, registries: Registries,
                 departing: Departing | None = None, parents: Parents | None = None) -> None:
        self.runtime = runtime
        self.events = events
        self.registries = registries
        self._users = users
        self._departing = departing
        self._parents = parents
        self._blobs = _BlobCache()
        self.sizes = LayerSizes(runtime)
        # The IDs of the images `rmi -f` hid (REMOVED_LABEL); None until a listing or a sweep has told.
        self._removed: set[str] | None = None
        self._sweeps: set[asyncio.Task[None]] = set()
        events.observe(self._saw)

    def _saw(self, ev: Event) -> None:
        if ev.type == CONTAINER and ev.action == "destroy" and self._removed != set():
            task = asyncio.get_running_loop().create_task(self.drop_removed(), name="images-drop-removed")
            self._sweeps.add(task)
            task.add_done_callback(self._sweeps.discard)

    async def drop_removed(self) -> None:
        """The images `rmi -f` hid go once no container uses them."""
        used = self._users.images_in_use()
        left = set()
        for record in await self.runtime.images():
            image_id = record.labels.get(REMOVED_LABEL)
            if image_id is None:
                continue
            if image_id in used:
                left.add(image_id)
                continue
            try:
                await self.runtime.remove_image(record.name)
            except NotFound:
                pass
            except RuntimeError_ as e:  # the next container that goes tries again
                log.warning("image %s not removed: %s", short_id(image_id), e.message)
                left.add(image_id)
        self._removed = left

    async def _json(self, digest: str) -> dict[str, Any]:
        doc = self._blobs.get(digest)
        if doc is None:
            doc = json.loads(await self.runtime.read_content(digest))
            if not isinstance(doc, dict):
                raise ValueError(f"{digest} is not a JSON object")
            self._blobs.put(digest, doc)
        return doc

    def written(self, digest: str, doc: dict[str, Any]) -> None:
        """A document the engine has just stored (a new image's config or manifest): known without reading it."""
        self._blobs.put(digest, doc)

    async def _manifest_of(self, target: dict[str, Any],
                           present: Callable[[], Awaitable[set[str]]]) -> tuple[str, dict[str, Any]]:
        if target.get("mediaType") not in INDEX_TYPES:
            return target["digest"], await self._json(target["digest"])
        # A pull fetches one platform's manifest out of an index: the image is the one present here.
        have = await present()
        entries = [e for e in (await self._json(target["digest"])).get("manifests") or []
                   if isinstance(e, dict) and e.get("digest") in have]
        if not entries:
            raise NotFound(f"no manifest of index {target['digest']} is stored")
        native = [e for e in entries if (e.get("platform") or {}).get("architecture") == _HOST_ARCH]
        chosen = (native or entries)[0]["digest"]
        return chosen, await self._json(chosen)

    async def images(self) -> list[LocalImage]:
        """Every image, grouped by ID; records whose content is unreadable are left out (and logged)."""
        records = [Record.from_runtime(image) for image in await self.runtime.images()]
        digests: asyncio.Future[set[str]] | None = None

        async def present() -> set[str]:
            nonlocal digests
            if digests is None:
                digests = asyncio.ensure_future(self._content_digests())
            return await digests

        described = await asyncio.gather(*(self._describe(r, present) for r in records))
        by_id: dict[str, LocalImage] = {}
        for record, image in zip(records, described):
            if image is None:
                continue
            by_id.setdefault(image.id, image).records.append(record)
        self._removed = {i.id for i in by_id.values() if all(r.removed for r in i.records)}
        return [i for i in by_id.values() if i.id not in self._removed]

    async def _content_digests(self) -> set[str]:
        return {c.digest for c in await self.runtime.content()}

    async def _describe(self, record: Record, present: Callable[[], Awaitable[set[str]]]) -> LocalImage | None:
        try:
            manifest_digest, manifest = await self._manifest_of(record.target, present)
            config_digest = manifest["config"]["digest"]
            config = await self._json(config_digest)
        except (NotFound, KeyError, TypeError, ValueError) as e:
            log.warning("image %s is unreadable, left out: %s", record.name, e)
            return None
        return LocalImage(id=config_digest, config=config, manifest_digest=manifest_digest,
                          layers=list(manifest.get("layers") or []), manifest_type=_manifest_type(manifest))

    async def manifests(self, images: list[LocalImage]) -> dict[str, list[dict[str, Any]]]:
        """Each image's manifests (engine/images/manifests.py), by image ID."""
        sizes = {c.digest: c.size for c in await self.runtime.content()}
        return {i.id: await manifests.summaries(i, self._json, sizes, [cid for cid, _ in self._users.image_users(i.id)])
                for i in images}

    async def get(self, term: str) -> Match:
        return find(await self.images(), term)

    async def from_record(self, record: RuntimeImage) -> LocalImage | None:
        """The image one runtime record names (None if its content is gone), carrying that record alone: what
        a build cache hit needs, read from the parsed documents without listing every record."""
        named = Record.from_runtime(record)
        digests: set[str] | None = None

        async def present() -> set[str]:
            nonlocal digests
            if digests is None:
                digests = await self._content_digests()
            return digests

        image = await self._describe(named, present)
        if image is not None:
            image.records.append(named)
        return image

    async def keep_if_orphaned(self, image_id: str, target: dict[str, Any]) -> None:
        """After a name moved away from `target`: keep its image as a dangling one if that was its last name.
        The build cache's names do not count: a rebuilt tag's old image shows as `<none>`, as in dockerd."""
        if any(image.id == image_id and not image.intermediate for image in await self.images()):
            return
        try:
            await self.runtime.put_image(DANGLING_PREFIX + target["digest"], target)
        except NotFound:
            pass  # already collected: nothing is left to keep

    async def tag(self, term: str, repo: str, tag: str) -> str:
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        images = await self.images()
        source = find(images, term)
        if "@" in repo or tag.startswith("sha256:"):
            raise InvalidArgument("refusing to create a tag with a digest reference")
        ref = parse(f"{repo}:{tag}" if tag else repo)
        name = str(ref)
        if ref.familiar_name == "sha256":
            # `sha256:<hex>` names the image by ID: a repository of that name could never be told from it.
            raise InvalidArgument("refusing to create an ambiguous tag using digest algorithm as name")
        previous = next((image for image in images for r in image.records if r.name == name), None)
        same = next((r for r in previous.records if r.name == name), None) if previous is not None else None
        # A name already on this very target stays as it is (a pull's keeps giving its repository digest).
        if same is None or same.digest != source.source.target["digest"]:
            await self.runtime.put_image(name, source.source.target, {TAGGED_LABEL: "true"})
        self._event("tag", source.image, familiar(name))
        if previous is not None and previous.id != source.image.id:
            old = next(r for r in previous.records if r.name == name)
            await self.keep_if_orphaned(previous.id, old.target)
        return name

    async def tag_image(self, image: LocalImage, repo: str, tag: str) -> str:
        """`tag` for an image in hand (a build's result): the name's current record is read alone, and every
        image listed only when the name leaves another image (which may be left with no name then)."""
        name = str(parse(f"{repo}:{tag}" if tag else repo))
        try:
            old: RuntimeImage | None = await self.runtime.image(name)
        except NotFound:
            old = None
        target = image.records[0].target
        await self.runtime.put_image(name, target, {TAGGED_LABEL: "true"})
        self._event("tag", image, familiar(name))
        if old is not None and old.target.digest != target["digest"]:
            previous = await self.from_record(old)
            if previous is not None and previous.id != image.id:
                await self.keep_if_orphaned(previous.id, old.target.model_dump())
        return name

    # parents ------------------------------------------------------------

    async def record_parent(self, child: LocalImage, parent: LocalImage) -> None:
        """`child` was made from `parent` (a commit): dockerd's Parent, and what rmi checks."""
        if self._parents is not None:
            await self._parents.record(child.id, parent.id)

    def parent_of(self, image: LocalImage, images: list[LocalImage]) -> str:
        """The ID of the image `image` was committed from, while that image exists ("" otherwise)."""
        parent = self._parents.parent(image.id) if self._parents is not None else None
        return parent if parent is not None and any(i.id == parent for i in images) else ""

    def ancestry(self, image: LocalImage, images: list[LocalImage]) -> list[LocalImage]:
        """The images `image` was committed from, nearest first, as far as they exist."""
        by_id = {i.id: i for i in images}
        out: list[LocalImage] = []
        while (parent := by_id.get(self.parent_of(image, images))) is not None and parent not in out:
            out.append(parent)
            image = parent
        return out

    def has_children(self, image_id: str, images: list[LocalImage]) -> bool:
        if self._parents is None:
            return False
        present = {i.id for i in images}
        return any(child in present for child in self._parents.children(image_id))

    async def remove(self, term: str, force: bool, prune: bool = True) -> list[dict[str, str]]:
        images = await self.images()
        match = find(images, term)
        image = match.image
        users = self._users.image_users(image.id)
        children = self.has_children(image.id, images)
        if match.record is not None and (giving := _giving_digest(term, image.named)):
            # dockerd keeps a pull's digest as a name of its own: removing it leaves the tags it was pulled by.
            for record in giving:
                await self.runtime.put_image(record.name, record.target, {DIGEST_REMOVED_LABEL: "true"})
            self._event("untag", image)
            return [{"Untagged": display_name(term)}]
        if match.record is not None:
            going = [match.record, *_digests_going_with(match.record, image.named)]
            others = [r for r in image.named if r not in going]
            if others:
                for record in going:
                    await self.runtime.remove_image(record.name)
                    # dockerd keeps a repository's digest while it has a tag of that image: another tag takes it.
                    if record.gives_digest and (heir := _digest_heir(record, others)) is not None:
                        await self.runtime.put_image(heir.name, heir.target)
                        others = [dataclasses.replace(r, tagged=False) if r is heir else r for r in others]
                self._event("untag", image)
                # A repository digest only those names gave goes with them, and dockerd says so.
                shown = [r.display for r in going]
                gone = [d for d in image.repo_digests if d not in repo_digests(others) and d not in shown]
                return [{"Untagged": name} for name in [*shown, *gone]]
            if users and not force:
                raise Conflict(f'conflict: unable to remove repository reference "{term}" (must force) - container '
                               f"{short_id(users[0][0])} is using its referenced image {short_id(image.id)}")
            if children:
                # Its last name goes; the image stays for the images made from it, as in dockerd.
                return await self._delete(image, keep=True)
        else:
            if children:
                raise Conflict(f"conflict: unable to delete {short_id(image.id)} (cannot be forced) - image has "
                               "dependent child images")
            if len(image.repositories) > 1 and not force:
                raise Conflict(f"conflict: unable to delete {short_id(image.id)} (must be forced) - image is "
                               "referenced in multiple repositories")
            if users:
                running = next((cid for cid, up in users if up), None)
                if running is not None:
                    raise Conflict(f"conflict: unable to delete {short_id(image.id)} (cannot be forced) - image is "
                                   f"being used by running container {short_id(running)}")
                if not force:
                    raise Conflict(f"conflict: unable to delete {short_id(image.id)} (must be forced) - image is "
                                   f"being used by stopped container {short_id(users[0][0])}")
        parent = self._parents.parent(image.id) if self._parents is not None and prune else None
        # Forced past stopped containers only, it is deleted as dockerd deletes it; a running one keeps it named
        # <none> (dockerd's "hard" conflict, which a force does not lift).
        hide = bool(users) and not any(up for _, up in users)
        items = await self._delete(image, keep=bool(users), others=images, hide=hide)
        if not users:
            items += await self._prune_parents(parent, images, items)
        return items

    async def _prune_parents(self, parent_id: str | None, images: list[LocalImage],
                             deleted: list[dict[str, str]]) -> list[dict[str, str]]:
        """After a child went (its report in `deleted`): the images it was committed from that have no name, no
        other child and no container go too, as dockerd prunes a deleted image's parents."""
        items: list[dict[str, str]] = []
        by_id = {i.id: i for i in images}
        while self._parents is not None and parent_id is not None and (parent := by_id.get(parent_id)) is not None:
            if parent.named or self.has_children(parent.id, images) or self._users.image_users(parent.id):
                break
            parent_id = self._parents.parent(parent.id)
            items += await self._delete(parent, keep=False, others=_left(images, deleted + items))
        return items

    async def _delete(self, image: LocalImage, keep: bool, others: list[LocalImage] | None = None,
                      hide: bool = False) -> list[dict[str, str]]:
        """Remove every name; with `keep` (containers still use it) the image stays, dangling, or with `hide`
        deleted for its users (REMOVED_LABEL). `others`: the images that stay, when the caller has them listed
        (a prune deletes many; one listing serves them all)."""
        if self._departing is not None and not keep:
            await self._departing.settled()
        if keep:
            await self.runtime.put_image(DANGLING_PREFIX + image.records[0].digest, image.records[0].target,
                                         {REMOVED_LABEL: image.id} if hide else None)
            if hide and self._removed is not None:
                self._removed.add(image.id)
        items = []
        for record in image.records:
            if keep and record.name.startswith(DANGLING_PREFIX):
                continue
            await self.runtime.remove_image(record.name)
            if record.ref is not None:
                items.append({"Untagged": record.display})
                self._event("untag", image)
        if not keep or hide:
            # Docker reports the repository digests it forgets along with the tags.
            untagged = {item["Untagged"] for item in items}
            items += [{"Untagged": d} for d in image.repo_digests if d not in untagged]
            # In dockerd's order: its reference store lists an image's names sorted by their full form.
            items.sort(key=lambda item: str(parse(item["Untagged"])))
            items.append({"Deleted": image.id})
            if not keep:
                stay = others if others is not None else await self.images()
                items += [{"Deleted": layer} for layer in _released_layers(image, stay)]
            self._event("delete", image)
            if self._parents is not None:
                await self._parents.forget(image.id)
        return items

    async def delete_unused(self, image: LocalImage) -> bool:
        """Delete `image` with all its names unless a container uses it by now (the storage budget's collection)."""
        if image.id in self._users.images_in_use() or self.has_children(image.id, await self.images()):
            return False
        try:
            await self._delete(image, keep=False)
        except NotFound:
            return False
        return True

    def _event(self, action: str, image: LocalImage, name: str | None = None) -> None:
        # Docker names an image by its ID in untag and delete events, by the new name in tag events; a deleted
        # image's labels are gone with it.
        self.events.image(action, image.id, name or image.id, {} if action == "delete" else image.labels)

    async def prune(self, select: Callable[[LocalImage], bool]) -> dict[str, Any]:
        """Delete every image `select` picks that no container uses; report what went and the bytes freed."""
        used = self._users.images_in_use()
        deleted: list[dict[str, str]] = []
        images = await self.images()
        await self.sizes.fill(images)
        # dockerd counts the unpacked bytes of the layers that went, not the blobs (which a pull may keep).
        layer_bytes = {c: size for image in images for c, size in zip(chain_ids(image.diff_ids), image.layer_sizes)}
        for image in images:
            # The build cache's images go with `docker builder prune`, not with the images'; an image others
            # were committed from goes with the last of them, when it has no name.
            if image.intermediate or not select(image) or image.id in used or self.has_children(image.id, images):
                continue
            if all(item.get("Deleted") != image.id for item in deleted):
                parent = self._parents.parent(image.id) if self._parents is not None else None
                deleted += await self._delete(image, keep=False, others=_left(images, deleted))
                deleted += await self._prune_parents(parent, images, deleted)
        reclaimed = sum(layer_bytes.get(item.get("Deleted", ""), 0) for item in deleted)
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    async def stored_bytes(self) -> int:
        return sum(c.size for c in await self.runtime.content())


def _digest_heir(record: Record, others: list[Record]) -> Record | None:
    """A tag left of `record`'s repository on the same target, to give the repository digest `record` gave; none
    when one already gives it."""
    assert record.ref is not None
    same = [r for r in others if r.ref is not None and r.ref.name == record.ref.name and r.digest == record.digest]
    if any(r.gives_digest for r in same):
        return None
    return next((r for r in same if r.is_tag), None)


def _released_layers(image: LocalImage, others: list[LocalImage]) -> list[str]:
    """The deleted image's layers (chain IDs, top first) that no other image holds: dockerd reports each."""
    held = {c for other in others if other.id != image.id for c in chain_ids(other.diff_ids)}
    return [c for c in reversed(chain_ids(image.diff_ids)) if c not in held]


def _left(images: list[LocalImage], deleted: list[dict[str, str]]) -> list[LocalImage]:
    """`images` without those `deleted` reports gone."""
    gone = {item["Deleted"] for item in deleted if "Deleted" in item}
    return [i for i in images if i.id not in gone]


def _giving_digest(term: str, named: list[Record]) -> list[Record]:
    """The pulled tags whose repository digest `term` (a `repo@digest` no record is named) is."""
    ref = parse(term)
    if ref.digest is None or any(r.name == str(ref) for r in named):
        return []
    return [r for r in named if r.ref is not None and r.ref.digest is None and r.ref.name == ref.name
            and r.gives_digest and r.digest == ref.digest]


def _digests_going_with(record: Record, named: list[Record]) -> list[Record]:
    """dockerd's rule: a repository's last tag takes that repository's digest names (`repo@sha256:...`) along."""
    ref = record.ref
    if ref is None or ref.digest is not None:
        return []
    same = [r for r in named if r is not record and r.ref is not None and r.ref.name == ref.name]
    if any(r.ref is not None and r.ref.digest is None for r in same):
        return []
    return same


def _manifest_type(manifest: dict[str, Any]) -> str:
    """The manifest's media type; an OCI manifest may leave it out, and then its config's type tells."""
    if manifest.get("mediaType"):
        return str(manifest["mediaType"])
    oci = (manifest.get("config") or {}).get("mediaType") == "application/vnd.oci.image.config.v1+json"
    return "application/vnd.oci.image.manifest.v1+json" if oci else ""
