"""--use-api-socket: the daemon's socket bind-mounted at /var/run/docker.sock, and the registry logins of
our config file copied in (at /run/secrets/docker/config.json, named by DOCKER_CONFIG), as docker 28 does."""
from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from cli.pyengine import credentials
from cli.pyengine.api import CLIError, Engine, path_quote

_CONFIG_DIR = "/run/secrets/docker"


def _logins() -> dict[str, Any]:
    auths = credentials.load().get("auths")
    return {server: entry for server, entry in (auths or {}).items() if isinstance(entry, dict) and entry}


def add_to(e: Engine, body: dict[str, Any]) -> dict[str, Any] | None:
    """Mount the socket in `body`; the logins to copy in after the create (None when there are none)."""
    if not e.host.startswith("unix://"):
        raise CLIError(f"flag --use-api-socket can only be used with unix sockets: docker endpoint {e.host} "
                       "incompatible")
    host_config = body["HostConfig"]
    host_config["Mounts"] = [*(host_config.get("Mounts") or []),
                             {"Type": "bind", "Source": e.host[len("unix://"):], "Target": "/var/run/docker.sock",
                              "BindOptions": {}}]
    logins = _logins()
    if not logins:
        return None
    body["Env"] = [*(body.get("Env") or []), f"DOCKER_CONFIG={_CONFIG_DIR}"]
    return {"auths": logins}


def copy_in(e: Engine, cid: str, config: dict[str, Any]) -> None:
    data = json.dumps(config, indent="\t").encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(_CONFIG_DIR.lstrip("/") + "/config.json")
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
    e.open("PUT", f"/containers/{path_quote(cid)}/archive", {"noOverwriteDirNonDir": "true", "path": "/"}, archive.getvalue(),
           {"Content-Type": "application/x-tar"}).close()
