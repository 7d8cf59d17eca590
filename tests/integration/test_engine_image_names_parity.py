"""Image names as dockerd 20.10 lists, finds and forgets them (docs/compatibility.md, session 20)."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.parse

from engine.config import DEFAULT_RUNTIME_NAMESPACE
from engine.images.model import REMOVED_LABEL

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def _listed(engine, path: str) -> list[tuple[list[str], list[str]]]:
    status, _, body = curl(engine, "GET", path)
    assert status == 200, body
    return [(row["RepoTags"] or [], row["RepoDigests"] or []) for row in json.loads(body)]


def _reference(engine, pattern: str) -> list[tuple[list[str], list[str]]]:
    return _listed(engine, "/v1.41/images/json?filters=" + urllib.parse.quote(json.dumps({"reference": [pattern]})))


def test_reference_filters_select_tags_and_digests_apart(engine, registry) -> None:
    repo = f"{registry.host}/library/busybox"
    ok(engine, "pull", "-q", f"{repo}:latest")
    ok(engine, "tag", f"{repo}:latest", "other/x:1")
    digest = ok(engine, "image", "inspect", "-f", "{{index .RepoDigests 0}}", f"{repo}:latest").strip()
    try:
        # A digest selects the digest alone (the row a script pinning digests looks for), a tag its tag alone,
        # the bare repository both.
        assert _reference(engine, digest) == [([], [digest])]
        assert _reference(engine, f"{repo}@*") == [([], [digest])]
        assert _reference(engine, f"{repo}:latest") == [([f"{repo}:latest"], [])]
        assert _reference(engine, repo) == [([f"{repo}:latest"], [digest])]
        assert _reference(engine, "other/x") == [(["other/x:1"], [])]

        # Clients before API 1.28 name the repository in the legacy `filter`; later ones' is not read.
        assert _listed(engine, "/v1.24/images/json?filter=other/x") == [(["other/x:1"], [])]
        tags = next(tags for tags, _ in _listed(engine, "/v1.41/images/json?filter=other/x") if "other/x:1" in tags)
        assert f"{repo}:latest" in tags

        # `docker tag` gives its repository no digest: other/x@<digest> names nothing.
        out = cli(engine, "image", "inspect", "other/x@" + digest.split("@")[1])
        assert out.returncode == 1 and "No such image: other/x@sha256:" in out.stderr
    finally:
        image_id = ok(engine, "image", "inspect", "-f", "{{.Id}}", "other/x:1").strip()
        removed = ok(engine, "rmi", "-f", image_id).splitlines()
    # dockerd lists the names it forgets sorted by their full form (docker.io/... after 127.0.0.1:...).
    assert [line for line in removed if line.startswith("Untagged")] == [
        f"Untagged: {repo}:latest", f"Untagged: {digest}", "Untagged: busybox:latest",
        f"Untagged: busybox@{digest.split('@')[1]}", "Untagged: other/x:1"]
    ok(engine, "pull", "-q", "busybox")


def test_rmi_force_past_stopped_containers_deletes_the_image(engine) -> None:
    ok(engine, "tag", "busybox", "forced:1")
    ok(engine, "rmi", "busybox")
    image_id = ok(engine, "image", "inspect", "-f", "{{.Id}}", "forced:1").strip()
    ok(engine, "create", "--name", "user1", "--network", "none", "forced:1", "echo", "still here")
    try:
        # As dockerd: a stopped container's image goes with -f (a running one's stays, named <none>).
        removed = ok(engine, "rmi", "-f", "forced:1").splitlines()
        assert removed == ["Untagged: forced:1", f"Deleted: {image_id}"]
        assert image_id[7:19] not in ok(engine, "images", "-a", "-q")
        assert cli(engine, "image", "inspect", image_id).returncode == 1
        assert ok(engine, "ps", "-a", "--filter", "name=user1", "--format", "{{.Image}}").strip() == image_id[7:19]
        assert ok(engine, "start", "-a", "user1") == "still here\n"
    finally:
        ok(engine, "rm", "user1")
        ok(engine, "pull", "-q", "busybox")

    async def records() -> list[str]:
        async with engine.runtime.client(DEFAULT_RUNTIME_NAMESPACE) as c:
            return [r.name for r in await c.images() if REMOVED_LABEL in r.labels]

    # Its content went with the last container that used it.
    deadline = time.monotonic() + 10
    while asyncio.run(records()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert asyncio.run(records()) == []
