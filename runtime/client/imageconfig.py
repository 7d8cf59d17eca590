"""From an image's config to the process a container runs, on the client side, as `ctr run` does it.

The runtime takes a container's process (args, env, cwd, user) as given and never reads the image's
config, like containerd, whose clients fill the process in first (its client-side spec options
`WithImageConfig` and `WithProcessArgs`). This is that step for the runtime's direct clients (pyctr,
tests, benchmarks), with ctr's rules:

- args: the image's Entrypoint followed by its Cmd; args given replace both (there is no separate
  entrypoint override, unlike `docker run`);
- env: the image's Env, then the env given (the runtime merges the list over its own defaults by key,
  a later KEY=VALUE replacing an earlier one, a bare KEY removing it);
- cwd and user: the ones given, else the image's WorkingDir and User, else unset (the runtime's "/" and root).

Docker's fuller merge (a request's Entrypoint apart from its Cmd, an empty Cmd meaning unset) is the
engine's, in engine/containers/plan.py; `image_config()` on the client fetches the config read here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict


class Process(TypedDict):
    """SpecOptions' process fields, ready to be put in a container's create options."""

    args: list[str]
    env: list[str]
    cwd: str | None
    user: str | None


def process_from_image(image_config: Mapping[str, Any], args: Sequence[str] = (), *, env: Sequence[str] = (),
                       cwd: str | None = None, user: str | None = None) -> Process:
    """The process for a container of the image whose config blob (`Client.image_config`) is `image_config`."""
    config: Mapping[str, Any] = image_config.get("config") or {}
    return Process(
        args=list(args) if args else [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])],
        env=[*(config.get("Env") or []), *env],
        cwd=cwd or config.get("WorkingDir") or None,
        user=user if user is not None else config.get("User") or None,
    )
