"""Image names checked on this side as the docker CLI checks them (distribution's ParseNormalizedNamed), so that
`build -t` and `tag` refuse a bad name in docker's words before anything is sent."""
from __future__ import annotations

import re

_ALNUM = "[a-z0-9]+"
_COMPONENT = f"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_PART = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_NAME = f"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE = re.compile(rf"({_NAME})(?::[\w][\w.-]{{0,127}})?"
                        r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):([0-9a-fA-F]{32,}))?", re.ASCII)
_IMAGE_ID = re.compile("[a-f0-9]{64}")
_NAME_MAX = 255
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or not any(c in first for c in ".:") and first != "localhost" and first.lower() == first:
        domain, rest = "docker.io", name
    else:
        domain = "docker.io" if first == "index.docker.io" else first
    if domain == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    return domain, rest


def name_error(ref: str) -> str | None:
    """Why `ref` is not a valid image name (with an optional tag or digest), in docker's words; None if it is."""
    if _IMAGE_ID.fullmatch(ref):
        return f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings"
    domain, remainder = _split_domain(ref)
    repository = remainder.partition(":")[0]
    if repository.lower() != repository:
        return f"invalid reference format: repository name ({repository}) must be lowercase"
    full = f"{domain}/{remainder}"
    match = _REFERENCE.fullmatch(full)
    if match is None:
        return "invalid reference format"
    name, algorithm, hex_digits = match.groups()
    if len(name) > _NAME_MAX:
        return f"repository name must not be more than {_NAME_MAX} characters"
    if algorithm is not None and algorithm not in _DIGEST_LENGTHS:
        return "unsupported digest algorithm"
    if algorithm is not None and len(hex_digits) != _DIGEST_LENGTHS[algorithm]:
        return "invalid checksum digest length"
    return None


def reference_error(ref: str) -> str | None:
    """As `name_error`, for a reference to an existing image, which may also be its ID or digest."""
    if _IMAGE_ID.fullmatch(ref) or re.fullmatch("sha256:[a-f0-9]{64}", ref):
        return None
    return name_error(ref)
