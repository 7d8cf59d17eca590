"""The process's user, resolved again on the container's own files at each start, as Docker does.

A container's spec is made at create from the image's /etc/passwd and /etc/group; by its next start the
container may have changed them (`docker cp`, a `useradd` in an exec). The request (the `--user` string and
the extra groups) rides in the spec's annotations; the task's bundle applies it to its mounted rootfs.
"""
from __future__ import annotations

import json
from typing import Any

from runtime.tasks.spec_options import SpecOptions
from runtime.tasks.users import resolve_user

ANNOTATION = "io.pyengine.user"


def request(opts: SpecOptions) -> str:
    """What to resolve again; `home`: HOME comes from the passwd entry (the environment names none)."""
    return json.dumps({"user": opts.user or "", "groups": list(opts.additional_gids),
                       "home": not any(e.startswith("HOME=") for e in opts.env)})


def apply(process: dict[str, Any], rootfs: str, annotation: str) -> None:
    """Set the process's uid, gids (and HOME, unless given) from the rootfs; InvalidArgument as at create."""
    wanted = json.loads(annotation)
    user = resolve_user(rootfs, wanted["user"], wanted["groups"])
    process["user"] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        process["user"]["additionalGids"] = user.additional_gids
    if wanted["home"]:
        process["env"] = [e for e in process.get("env", []) if not e.startswith("HOME=")] + [f"HOME={user.home}"]
