"""The docker CLI's context store, shared with it: under $DOCKER_CONFIG/contexts, `meta/<id>/meta.json` holds a
context's name, metadata and endpoints, `tls/<id>/docker/{ca,cert,key}.pem` its TLS material for the docker
endpoint, <id> being the sha256 of the name. `default` is not stored: it is the CLI's own host settings."""
from __future__ import annotations

import json
import os
import re
from typing import Any

from cli.pyengine.api import CLIError

DEFAULT = "default"
DEFAULT_DESCRIPTION = "Current DOCKER_HOST based configuration"
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$")


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def context_id(name: str) -> str:
    import hashlib  # only contexts pay for it (OpenSSL's libcrypto, 3 ms)

    return hashlib.sha256(name.encode()).hexdigest()


def meta_path(name: str) -> str:
    return os.path.join(config_dir(), "contexts", "meta", context_id(name))


def tls_path(name: str) -> str:
    return os.path.join(config_dir(), "contexts", "tls", context_id(name))


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise CLIError(f'context name "{name}" is invalid, names are validated against regexp '
                       f'"{_NAME.pattern}"')
    if name == DEFAULT:
        raise CLIError(f'"{DEFAULT}" is a reserved context name')


def load(name: str) -> dict[str, Any]:
    """A stored context's meta.json, as docker words a missing one."""
    path = os.path.join(meta_path(name), "meta.json")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise CLIError(f'context "{name}": context not found: open {path}: no such file or directory') from None
    except (OSError, ValueError) as e:
        raise CLIError(f'context "{name}": {e}') from None
    if not isinstance(meta, dict):
        raise CLIError(f'context "{name}": {path} is not a JSON object')
    return meta


def exists(name: str) -> bool:
    return os.path.isfile(os.path.join(meta_path(name), "meta.json"))


def stored_names() -> list[str]:
    root = os.path.join(config_dir(), "contexts", "meta")
    try:
        entries = os.listdir(root)
    except FileNotFoundError:
        return []
    names = []
    for entry in entries:
        try:
            with open(os.path.join(root, entry, "meta.json"), encoding="utf-8") as f:
                name = json.load(f).get("Name")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(name, str):
            names.append(name)
    return names


def docker_endpoint(meta: dict[str, Any]) -> dict[str, Any]:
    endpoint = (meta.get("Endpoints") or {}).get("docker")
    return endpoint if isinstance(endpoint, dict) else {}


def tls_files(name: str) -> dict[str, str]:
    """The docker endpoint's TLS files that are there, by their name (ca.pem, cert.pem, key.pem)."""
    directory = os.path.join(tls_path(name), "docker")
    return {f: os.path.join(directory, f) for f in TLS_FILES if os.path.isfile(os.path.join(directory, f))}


def save(name: str, meta: dict[str, Any], tls: dict[str, bytes] | None) -> None:
    """Write a context's meta.json and, unless `tls` is None (kept as it is), replace its TLS material."""
    directory = meta_path(name)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    temporary = os.path.join(directory, ".meta.json.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(meta, f, separators=(",", ":"))
    os.replace(temporary, os.path.join(directory, "meta.json"))
    if tls is not None:
        replace_tls(name, {"docker": tls} if tls else {})


def tls_tree(name: str) -> dict[str, dict[str, bytes]]:
    """Every endpoint's TLS files, by endpoint and file name (what `context export` carries)."""
    root, out = tls_path(name), dict[str, dict[str, bytes]]()
    for endpoint in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        directory = os.path.join(root, endpoint)
        files = sorted(f for f in os.listdir(directory) if os.path.isfile(os.path.join(directory, f))) \
            if os.path.isdir(directory) else []
        out[endpoint] = {}
        for file in files:
            with open(os.path.join(directory, file), "rb") as f:
                out[endpoint][file] = f.read()
    return out


def replace_tls(name: str, tree: dict[str, dict[str, bytes]]) -> None:
    """The context's TLS material becomes `tree` (endpoint -> file name -> bytes; plain names only)."""
    import shutil

    shutil.rmtree(tls_path(name), ignore_errors=True)
    for endpoint, files in tree.items():
        directory = os.path.join(tls_path(name), endpoint)
        os.makedirs(directory, mode=0o700)
        for file, data in files.items():
            fd = os.open(os.path.join(directory, file), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)


def remove(name: str) -> None:
    import shutil

    shutil.rmtree(meta_path(name), ignore_errors=True)
    shutil.rmtree(tls_path(name), ignore_errors=True)
