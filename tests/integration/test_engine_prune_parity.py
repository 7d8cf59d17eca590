"""Prune, disk usage and image details as dockerd 20.10 gives them (docs/compatibility.md, session 19): the
shapes of `/system/df` and the prune answers, a commit message dockerd kept only in the history."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import time

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def test_disk_usage_lists_newest_first_in_dockerds_shapes(engine: EngineDaemon) -> None:
    ok(engine, "create", "--name", "older", "busybox", "true")
    time.sleep(1.1)
    ok(engine, "create", "--name", "newer", "busybox", "true")
    ok(engine, "commit", "older", "committed:1")
    doc = json.loads(curl(engine, "GET", "/v1.41/system/df")[2])
    assert [c["Names"] for c in doc["Containers"]][:2] == [["/newer"], ["/older"]]
    assert doc["Images"][0]["RepoTags"] == ["committed:1"]
    # No build cache is null, and 1.41 still has BuilderSize.
    assert (doc["BuildCache"], doc["BuilderSize"]) == (None, 0)
    assert "BuilderSize" not in json.loads(curl(engine, "GET", "/v1.42/system/df")[2])


def test_a_prune_with_nothing_to_do_answers_null(engine: EngineDaemon) -> None:
    assert json.loads(curl(engine, "POST", "/networks/prune")[2]) == {"NetworksDeleted": None}


def test_a_commit_message_kept_only_in_the_history_is_the_comment(engine: EngineDaemon) -> None:
    # As a dockerd 20.10 commit writes it: the message in the last history entry, none at the top of the config.
    saved = tarfile.open(fileobj=io.BytesIO(subprocess.run(["docker", "save", "busybox"], env=engine.env(),
                                                           capture_output=True, check=True).stdout))
    # The Docker layout alone (manifest.json): an index.json would name the image by its own records.
    members = {m.name: saved.extractfile(m).read() for m in saved.getmembers()
               if m.isfile() and m.name not in ("index.json", "oci-layout")}
    manifest = json.loads(members["manifest.json"])
    config = json.loads(members[manifest[0]["Config"]])
    config.pop("comment", None)
    config["history"][-1]["comment"] = "from history"
    raw = json.dumps(config).encode()
    name = hashlib.sha256(raw).hexdigest() + ".json"
    manifest[0].update(Config=name, RepoTags=["historic:1"])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, data in {**members, name: raw, "manifest.json": json.dumps(manifest).encode()}.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "load", "-q"], env=engine.env(), input=out.getvalue(), capture_output=True, check=True)
    assert ok(engine, "image", "inspect", "-f", "{{.Comment}}", "historic:1") == "from history\n"



def test_a_parent_an_archive_records_is_kept_at_load(engine: EngineDaemon) -> None:
    # dockerd 20.10 writes the Parent of a committed image saved with it into manifest.json, and its load keeps it.
    # The archive is loaded through its manifest.json alone, as dockerd 20.10's are.
    ok(engine, "create", "--name", "kid", "busybox", "true")
    ok(engine, "commit", "kid", "child:1")
    ok(engine, "rm", "kid")
    parent = json.loads(ok(engine, "image", "inspect", "busybox"))[0]["Id"]
    saved = tarfile.open(fileobj=io.BytesIO(subprocess.run(["docker", "save", "child:1", "busybox"], env=engine.env(),
                                                           capture_output=True, check=True).stdout))
    members = {m.name: saved.extractfile(m).read() for m in saved.getmembers()
               if m.isfile() and m.name not in ("index.json", "oci-layout")}
    manifest = json.loads(members["manifest.json"])
    # Written as dockerd writes it: the child's entry names the parent saved beside it.
    assert [entry.get("Parent") for entry in manifest if "child:1" in entry["RepoTags"]] == [parent]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, data in {**members, "manifest.json": json.dumps(manifest).encode()}.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ok(engine, "rmi", "child:1", "busybox")
    subprocess.run(["docker", "load", "-q"], env=engine.env(), input=out.getvalue(), capture_output=True, check=True)
    assert ok(engine, "image", "inspect", "-f", "{{.Parent}}", "child:1") == parent + "\n"
