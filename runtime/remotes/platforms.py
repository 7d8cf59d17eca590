"""Choosing the manifest for a platform from an image index / manifest list."""
from __future__ import annotations

import logging
import platform as _host
from typing import Any

from pydantic import ValidationError

from runtime.errors import InvalidArgument, NotFound
from runtime.oci import Descriptor, Platform

# uname -m and Debian-style names -> (GOARCH, implied variant).
_ARCH_ALIASES: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armv8l": ("arm", "v8"),
    "armv7l": ("arm", "v7"),
    "armhf": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armel": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "x86": ("386", ""),
}
# Architectures whose variants are ordered levels: a host runs its own level
# and every lower one, never a higher one.
_VARIANT_LEVELS: dict[str, list[str]] = {
    "arm": ["v5", "v6", "v7", "v8"],
    "amd64": ["", "v2", "v3", "v4"],
}
_ATTESTATION_ANNOTATION = "vnd.docker.reference.type"

log = logging.getLogger("runtime.remotes")


def normalize(os: str, arch: str, variant: str | None = None) -> tuple[str, str, str]:
    """Canonical (os, architecture, variant) with the conventional defaults filled in."""
    os = os.strip().lower()
    if os == "macos":
        os = "darwin"
    arch = arch.strip().lower()
    arch, implied = _ARCH_ALIASES.get(arch, (arch, ""))
    v = (variant or implied).strip().lower()
    if v.isdigit():
        v = "v" + v
    if arch == "arm64" and v == "v8":
        v = ""  # arm64 is v8 unless said otherwise; registries write it both ways
    elif arch == "arm" and v == "":
        v = "v7"  # what an unqualified 32-bit arm image is built for
    elif arch == "amd64" and v == "v1":
        v = ""
    return os, arch, v


def host_platform() -> Platform:
    """The platform this daemon runs images for."""
    os, arch, variant = normalize(_host.system(), _host.machine())
    return Platform(os=os, architecture=arch, variant=variant or None)


def format_platform(os: str, arch: str, variant: str = "") -> str:
    return f"{os}/{arch}/{variant}" if variant else f"{os}/{arch}"


def _variant_rank(arch: str, wanted: str, candidate: str) -> int | None:
    """How good `candidate` is for a host wanting `wanted` (higher better), None if unusable."""
    levels = _VARIANT_LEVELS.get(arch)
    if levels is not None and wanted in levels and candidate in levels:
        have, want = levels.index(candidate), levels.index(wanted)
        return have if have <= want else None
    if candidate == wanted:
        return 1
    # An entry that does not name a variant claims to run on all of them.
    return 0 if candidate == "" else None


def select_manifest(
    index: dict[str, Any], os: str = "linux", arch: str | None = None, variant: str | None = None
) -> Descriptor:
    """The best manifest in an index for os/arch/variant (arch defaults to the host's).

    Exact variant beats a compatible lower one (arm/v6 on an arm/v7 host);
    among equals the index's order wins. NotFound says it in dockerd's words (clients match on them);
    what the index offers goes to the log.
    """
    if arch is None:
        host = host_platform()
        arch, variant = host.architecture, host.variant if variant is None else variant
    want_os, want_arch, want_variant = normalize(os, arch, variant)

    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list):
        raise InvalidArgument("image index has no 'manifests' list")

    best: tuple[int, dict[str, Any]] | None = None
    available: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("platform"), dict):
            continue
        annotations = entry.get("annotations") or {}
        if isinstance(annotations, dict) and annotations.get(_ATTESTATION_ANNOTATION) == "attestation-manifest":
            continue
        p = entry["platform"]
        e_os, e_arch, e_variant = normalize(
            str(p.get("os", "")), str(p.get("architecture", "")), str(p.get("variant") or "")
        )
        available.append(format_platform(e_os, e_arch, e_variant))
        if (e_os, e_arch) != (want_os, want_arch):
            continue
        rank = _variant_rank(want_arch, want_variant, e_variant)
        if rank is not None and (best is None or rank > best[0]):
            best = (rank, entry)

    if best is None:
        wanted = format_platform(want_os, want_arch, want_variant)
        log.info("no manifest for %s in an index offering %s", wanted, ", ".join(dict.fromkeys(available)) or "none")
        raise NotFound(f"no matching manifest for {wanted} in the manifest list entries")
    try:
        return Descriptor.model_validate(best[1])
    except ValidationError as e:
        raise InvalidArgument(f"invalid manifest descriptor in image index: {e}") from None
