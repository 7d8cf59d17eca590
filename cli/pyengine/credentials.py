"""The docker CLI's credentials file: `auths` in $DOCKER_CONFIG/config.json (~/.docker/config.json).

Entries are kept as the docker CLI keeps them: `{"auth": base64("user:password")}` (or an `identitytoken`)
under the server address as given at login, Docker Hub's as `https://index.docker.io/v1/`; a lookup by
registry host matches any entry whose key names that host, so both CLIs read each other's logins. Other keys
of the file are left as they are.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cli.pyengine.api import CLIError
from cli.pyengine.contextstore import config_dir

INDEX_SERVER = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def config_path() -> Path:
    return Path(config_dir()) / "config.json"


def hostname(server: str) -> str:
    """The registry host a server address or config key names (`https://host/v1/` → `host`)."""
    host = server.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme):]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if not host or host in _HUB_HOSTS else host


def load() -> dict[str, Any]:
    path = config_path()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise CLIError(f"loading config file {path}: {e}") from None
    if not isinstance(doc, dict):
        raise CLIError(f"loading config file {path}: not a JSON object")
    return doc


def _save(doc: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written beside and renamed over: a crash leaves the old file or the new one, never half of one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.json.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent="\t")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def store(server: str, username: str, password: str, identity_token: str = "") -> Path:
    doc = load()
    auths = doc.setdefault("auths", {})
    if identity_token:
        entry = {"auth": base64.b64encode(f"{username}:".encode()).decode(), "identitytoken": identity_token}
    else:
        entry = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    auths[server] = entry
    _save(doc)
    return config_path()


def remove(server: str) -> None:
    """Forget the logins for `server`'s host."""
    doc = load()
    auths = doc.get("auths") or {}
    keys = [k for k in auths if k == server or hostname(k) == hostname(server)]
    for key in keys:
        del auths[key]
    if keys:
        _save(doc)


def lookup(host: str) -> dict[str, str] | None:
    """Docker's AuthConfig for `host` ({username, password, serveraddress} or an identitytoken), if logged in."""
    auths = load().get("auths") or {}
    for key, entry in auths.items():
        if hostname(key) != hostname(host) or not isinstance(entry, dict):
            continue
        username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
        if entry.get("auth"):
            try:
                username, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise CLIError(f"invalid auth configuration file: the auth of {key} is not base64") from None
        out = {"username": username, "password": password, "serveraddress": key}
        if entry.get("identitytoken"):
            out["identitytoken"] = str(entry["identitytoken"])
        return out
    return None
