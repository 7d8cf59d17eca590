"""Docker image references: parsing, normalisation and the familiar short form.

The accepted language is docker/distribution's reference grammar, and names are
normalised the way `docker pull` does it: a bare name lives on Docker Hub
(`busybox` -> `docker.io/library/busybox:latest`), `index.docker.io` is an alias
of `docker.io`, and a reference with neither tag nor digest gets `:latest`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import InvalidArgument
from runtime.oci import validate_digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DOCKER_HUB_API_DOMAIN = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# The grammar writes the separator as `[._]|__|[-]*`; `[-]+` accepts the same
# language (zero dashes is just a longer alphanumeric run) without the
# catastrophic backtracking `[-]*` causes in a backtracking regex engine.
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
# re.ASCII: the grammar's \w is Go's, which is ASCII-only.
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ANCHORED_ID_RE = re.compile(r"[a-f0-9]{64}")


def _invalid(reason: str) -> InvalidArgument:
    return InvalidArgument(f"invalid reference format: {reason}")


@dataclass(frozen=True)
class Reference:
    """A normalised reference: always a domain, a path, and a tag and/or a digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    @property
    def name(self) -> str:
        """`domain/path`, e.g. `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def repository_path(self) -> str:
        """The repository name used in registry API URLs and token scopes."""
        return self.path

    @property
    def api_domain(self) -> str:
        """The host serving the registry API; Docker Hub's differs from its name."""
        return DOCKER_HUB_API_DOMAIN if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def locator(self) -> str:
        """What to ask `/manifests/` for: the digest wins because it is immutable."""
        if self.digest is not None:
            return self.digest
        assert self.tag is not None  # parse() guarantees a tag or a digest
        return self.tag

    @property
    def familiar_name(self) -> str:
        """The name as Docker displays it (`busybox`, `user/img`, `host:5000/x`)."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in self.path[len(OFFICIAL_REPO_PREFIX):]:
            return self.path[len(OFFICIAL_REPO_PREFIX):]
        return self.path

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.fullmatch(tag):
            raise _invalid(f"invalid tag {tag!r}")
        return Reference(self.domain, self.path, tag, self.digest)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, self.tag, _checked_digest(digest))


def _checked_digest(digest: str) -> str:
    try:
        return validate_digest(digest)
    except InvalidArgument as e:
        raise _invalid(e.message) from None


def _split_domain(name: str) -> tuple[str, str]:
    """Split off the registry domain the way the Docker CLI does.

    The first component is a domain only if it looks like one (has '.' or ':',
    or is `localhost`) or has uppercase letters, which a repository path never
    may; otherwise the whole name is a Docker Hub repository.
    """
    first, sep, rest = name.partition("/")
    if not sep or (
        "." not in first and ":" not in first and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(ref: str) -> Reference:
    """Parse and normalise a reference; a bare name gets the `latest` tag.

    Raises InvalidArgument ("invalid reference format: ...") on anything the
    reference grammar rejects.
    """
    if not isinstance(ref, str) or ref == "":
        raise _invalid("repository name must have at least one component")
    if _ANCHORED_ID_RE.fullmatch(ref):
        # Ambiguous with an image ID, so Docker refuses it as a name.
        raise _invalid(f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings")

    remainder, at, digest = ref.partition("@")
    if at:
        digest = _checked_digest(digest)
    # A ':' after the last '/' starts the tag; earlier ones belong to a port.
    name, tag = remainder, None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        name, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG_RE.fullmatch(tag):
            raise _invalid(f"invalid tag {tag!r} in {ref!r}")

    domain, path = _split_domain(name)
    if not _DOMAIN_RE.fullmatch(domain):
        raise _invalid(f"invalid registry domain {domain!r} in {ref!r}")
    if path.lower() != path:
        raise _invalid(f"repository name ({path}) must be lowercase")
    for component in path.split("/"):
        if not _PATH_COMPONENT_RE.fullmatch(component):
            raise _invalid(f"invalid repository name component {component!r} in {ref!r}")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _invalid(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")

    if tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest if at else None)


def familiar(ref: Reference | str) -> str:
    """Docker's short display form: `busybox:latest`, `user/img:1`, `host:5000/x@sha256:...`."""
    r = parse(ref) if isinstance(ref, str) else ref
    out = r.familiar_name
    if r.tag is not None:
        out += f":{r.tag}"
    if r.digest is not None:
        out += f"@{r.digest}"
    return out
