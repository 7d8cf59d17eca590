"""Image endpoints: pull (create; its import form is image_make's), list, inspect, history, tag, remove, prune."""
from __future__ import annotations

import logging

from aiohttp import web

from engine import prune_guard
from engine.api import query, versions
from engine.api.app import Router
from engine.api.streams import progress_response
from engine.api.routers.image_make import import_image
from engine.api.responses import empty, json_response
from engine.backend import Backend
from engine.errors import InvalidArgument, NotFound
from engine.images import filters, platforms, views
from engine.images.lookup import NoSuchImage, find
from engine.images.model import LocalImage
from engine.images.pull import RegistryAuth, all_tags, pull, pull_all, pull_reference

log = logging.getLogger("engine.api.images")



def _check_platform(request: web.Request, name: str, image: LocalImage) -> None:
    """`platform` (API 1.46+) names what to show: the image's own platform, else nothing is there to show."""
    if request.query.get("platform"):
        wanted = platforms.from_json(request.query["platform"])
        own = platforms.of_image(image.config)
        if not wanted.matches(own):
            raise NotFound(f"image {name} has no content for platform {wanted} (its platform is {own})")


def register(r: Router, b: Backend) -> None:
    images = b.images

    async def create(request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("fromSrc"):
            return await import_image(request, b)
        ref = pull_reference(q.get("fromImage", ""), q.get("tag", ""))
        wanted = platforms.parse(q["platform"]) if q.get("platform") else None
        every = pull_all if all_tags(q.get("fromImage", ""), q.get("tag", "")) else pull
        auth = RegistryAuth.from_header(request.headers.get("X-Registry-Auth"))
        messages = b.metrics.transfers.pull(every(images, ref, platform=str(wanted) if wanted else None, auth=auth))
        return await progress_response(request, messages, f"pull of {ref}")

    async def list_images(request: web.Request) -> web.Response:
        all_images = await images.images()

        def created_of(term: str) -> float:
            return find(all_images, term).image.created_at

        wanted = query.filters(request.query)
        # Clients before API 1.28 (docker 1.12's `docker images NAME`) name the repository in `filter`.
        if request.query.get("filter") and versions.of(request) < (1, 28):
            wanted.setdefault("reference", []).append(request.query["filter"])
        select = filters.list_selector(wanted, created_of)
        # Build steps' images (the build cache) show only with --all, as dockerd's intermediate images do.
        show_all = query.boolean(request.query, "all")
        await images.sizes.fill(all_images)
        shared = views.shared_sizes(all_images) if query.boolean(request.query, "shared-size") else {}
        listed = await images.manifests(all_images) if _manifests_asked(request, (1, 47)) else None
        out = []
        for image in all_images:
            # So do nameless images others were committed from.
            hidden = image.intermediate or (image.dangling and images.has_children(image.id, all_images))
            if hidden and not show_all:
                continue
            names = select(image)
            if names is not None:
                doc = views.summary(image, names, images.parent_of(image, all_images))
                doc["SharedSize"] = shared.get(image.id, -1)
                if listed is not None:
                    doc["Manifests"] = listed[image.id]
                out.append(versions.image_summary(doc, versions.of(request)))
        out.sort(key=lambda s: s["Created"], reverse=True)
        return json_response(out)

    async def inspect(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        all_images = await images.images()
        try:
            match = find(all_images, name)
        except NoSuchImage as e:
            raise NotFound(f"no such image: {name}: {e.message}") from None
        _check_platform(request, name, match.image)
        parent = images.parent_of(match.image, all_images)
        await images.sizes.fill([match.image])
        doc = versions.image_inspect(views.inspect(match.image, parent), versions.of(request),
                                     match.image.config.get("container_config"),
                                     versions.reads_container_config(request))
        if _manifests_asked(request, (1, 48)):
            doc["Manifests"] = (await images.manifests([match.image]))[match.image.id]
        return json_response(doc)

    async def history(request: web.Request) -> web.Response:
        all_images = await images.images()
        image = find(all_images, request.match_info["name"]).image
        _check_platform(request, request.match_info["name"], image)
        await images.sizes.fill([image])
        return json_response(views.history(image, images.ancestry(image, all_images)))

    async def tag(request: web.Request) -> web.Response:
        await images.tag(request.match_info["name"], request.query.get("repo", ""), request.query.get("tag", ""))
        return empty(201)

    async def remove(request: web.Request) -> web.Response:
        if request.query.get("platforms"):
            # One platform's content of a multi-platform image: the images here are of one platform each.
            raise InvalidArgument("removing one platform's content of an image (platforms, --platform) is not "
                                  "supported: images here hold one platform each")
        # `noprune` keeps the nameless images a committed image was made from.
        return json_response(await images.remove(request.match_info["name"], query.boolean(request.query, "force"),
                                                 prune=not query.boolean(request.query, "noprune")))

    async def prune(request: web.Request) -> web.Response:
        with b.prunes.running(prune_guard.IMAGES):
            report = await images.prune(filters.prune_selector(query.filters(request.query)))
        images.events.publish("image", "prune", "", {"reclaimed": str(report["SpaceReclaimed"])})
        return json_response(report)

    r.add("POST", "/images/create", create)
    r.add("GET", "/images/json", list_images)
    r.add("POST", "/images/prune", prune)
    # Names contain '/' and ':' (127.0.0.1:5000/library/busybox:latest): match them greedily.
    r.add("GET", "/images/{name:.+}/json", inspect)
    r.add("GET", "/images/{name:.+}/history", history)
    r.add("POST", "/images/{name:.+}/tag", tag)
    r.add("DELETE", "/images/{name:.+}", remove)


def _manifests_asked(request: web.Request, since: versions.Version) -> bool:
    """`manifests=1`, which clients older than the version that brought it cannot mean."""
    return query.boolean(request.query, "manifests") and versions.of(request) >= since
