"""Which daemon to talk to, as the docker CLI chooses: -H, then $PYENGINE_HOST, then $DOCKER_HOST, then a
context (--context, $DOCKER_CONTEXT, or the docker CLI's current context in its config.json), then the
default socket. Also the config file's saved --format defaults (psFormat, imagesFormat, ...)."""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from cli.pyengine.api import CLIError

DEFAULT_HOST = "unix:///run/pyengine/engine.sock"


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def _config() -> dict[str, Any]:
    """The docker CLI's config file; one it cannot read is warned about and ignored, as docker does."""
    path = os.path.join(config_dir(), "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            loaded = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        print(f"WARNING: Error loading config file: {path}: {e}", file=sys.stderr)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def config_value(key: str) -> Any:
    return _config().get(key)


def _context_host(name: str) -> str:
    """A docker CLI context's endpoint: contexts/meta/<sha256 of the name>/meta.json, Endpoints.docker.Host."""
    if name == "default":
        return DEFAULT_HOST
    import hashlib  # only a context costs its import

    meta = os.path.join(config_dir(), "contexts", "meta", hashlib.sha256(name.encode()).hexdigest(), "meta.json")
    try:
        with open(meta, encoding="utf-8") as f:
            endpoint = (json.load(f).get("Endpoints") or {}).get("docker") or {}
    except FileNotFoundError:
        raise CLIError(f"context {name!r} does not exist", 125) from None
    except (OSError, ValueError, AttributeError) as e:
        raise CLIError(f"reading context {name!r}: {e}", 125) from None
    host = endpoint.get("Host") if isinstance(endpoint, dict) else None
    if not host:
        raise CLIError(f"context {name!r} has no docker endpoint", 125)
    return str(host)


def resolve(host: str | None, context: str | None) -> str:
    if host and context:
        raise CLIError("conflicting options: cannot specify both --host and --context", 125)
    if host:
        return host
    if context:
        return _context_host(context)
    for variable in ("PYENGINE_HOST", "DOCKER_HOST"):
        if os.environ.get(variable):
            return os.environ[variable]
    name = os.environ.get("DOCKER_CONTEXT") or config_value("currentContext")
    return _context_host(name) if name else DEFAULT_HOST
