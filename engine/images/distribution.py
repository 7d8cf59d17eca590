"""GET /distribution/{name}/json: what a name points at in its registry, read without pulling.

The runtime reads the registry (mirrors, insecure hosts and X-Registry-Auth apply as for a pull);
this turns its answer into Docker's DistributionInspect and its failures into dockerd's words.
Platforms come from an index's entries or a manifest's config, OCI manifests included (dockerd
20.10 leaves those null).
"""
from __future__ import annotations

import re
from typing import Any

from engine.errors import InvalidArgument, NotFound, Unauthorized
from engine.images.pull import RegistryAuth, hub_detail
from engine.images.store import Registries
from runtime.client import NotFound as RegistryNotFound
from runtime.client import RuntimeAPI
from runtime.client.reference import parse

_FULL_ID = re.compile(r"(sha256:)?[0-9a-f]{64}")
# ocispec.Platform's fields, in its order.
_PLATFORM_FIELDS = ("architecture", "os", "os.version", "os.features", "variant")
# Docker Hub's answer for a repository it does not have (or will not show), which dockerd passes on.
_HUB_DENIED = "errors:\ndenied: requested access to the resource is denied\nunauthorized: authentication required\n"


async def inspect(runtime: RuntimeAPI, registries: Registries, name: str,
                  auth: RegistryAuth | None) -> dict[str, Any]:
    if _FULL_ID.fullmatch(name):
        raise InvalidArgument("no manifest found for full image ID")
    ref = parse(name)
    try:
        found = await runtime.describe_remote(str(ref), mirrors=registries.mirrors, insecure=registries.insecure,
                                              credentials=auth.credentials() if auth else None)
    except RegistryNotFound as e:
        detail = await hub_detail(runtime, registries, ref, auth.credentials() if auth else None, e.message)
        if ref.domain == "docker.io" and "name unknown" in detail:
            raise Unauthorized(_HUB_DENIED) from None
        # distribution's client says the same of a missing repository and a missing tag.
        raise NotFound("manifest unknown: manifest unknown") from None
    d = found.descriptor
    platforms = [{k: p[k] for k in _PLATFORM_FIELDS if k in p} for p in found.platforms]
    return {"Descriptor": {"mediaType": d.mediaType, "digest": d.digest, "size": d.size},
            "Platforms": platforms or None}
