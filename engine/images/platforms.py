"""Platform specifiers (`os[/arch[/variant]]`), read and normalised as containerd's platforms package does, and
matched against an image's own, with dockerd's words when they differ."""
from __future__ import annotations

import json
import platform as host_platform
from dataclasses import dataclass

from engine.errors import InvalidArgument

_OSES = {"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl",
         "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos"}
_ARCHES = {"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips", "mipsle", "mips64",
           "mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le", "riscv", "riscv64", "s390", "s390x",
           "sparc", "sparc64", "wasm"}
# Other names for the same architectures, and the variant each implies.
_ALIASES = {"i386": ("386", ""), "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "aarch64": ("arm64", ""),
            "armhf": ("arm", "v7"), "armel": ("arm", "v6")}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, other: Platform) -> bool:
        """`other` (an image's) satisfies this one; an unset variant accepts any, arm64's v8 is its default."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        mine, theirs = self.variant, other.variant
        if self.architecture == "arm64":
            mine, theirs = mine or "v8", theirs or "v8"
        return not mine or mine == theirs

    def as_config(self) -> dict[str, str]:
        """The platform fields of an image config."""
        out = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            out["variant"] = self.variant
        return out


def host() -> Platform:
    arch, variant = _arch(host_platform.machine().lower())
    return Platform("linux", arch, variant)


def _arch(name: str) -> tuple[str, str]:
    return _ALIASES.get(name, (name, ""))


def parse(spec: str) -> Platform:
    """containerd's platforms.Parse: `linux`, `arm64` (the host's OS), `linux/arm/v7`; else dockerd's 400."""
    parts = spec.lower().split("/")
    bad = InvalidArgument(f'"{spec}": unknown operating system or architecture: invalid argument')
    if not spec or len(parts) > 3 or any(not p for p in parts):
        raise bad
    if len(parts) == 1:
        if parts[0] in _OSES:
            default = host()
            return Platform(parts[0], default.architecture, default.variant) if parts[0] == "linux" else \
                Platform(parts[0], default.architecture)
        arch, variant = _arch(parts[0])
        if arch not in _ARCHES:
            raise bad
        return Platform("linux", arch, variant)
    os_name = parts[0]
    arch, variant = _arch(parts[1])
    if os_name not in _OSES or arch not in _ARCHES:
        raise bad
    if len(parts) == 3:
        variant = parts[2]
    return Platform(os_name, arch, variant)


def of_image(config: dict[str, object]) -> Platform:
    """An image config's platform."""
    return Platform(str(config.get("os") or ""), str(config.get("architecture") or ""),
                    str(config.get("variant") or ""))


def from_json(text: str) -> Platform:
    """An API 1.46+ `platform` query parameter: a JSON-encoded OCI platform (`{"os":"linux","architecture":...}`)."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("os"), str) or not isinstance(doc.get("architecture"), str):
        raise InvalidArgument(f"invalid platform {text!r}: a JSON object with os and architecture is needed")
    return parse("/".join(p for p in (doc["os"], doc["architecture"], str(doc.get("variant") or "")) if p))
