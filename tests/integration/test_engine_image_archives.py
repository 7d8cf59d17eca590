"""docker save / docker load against pyengined: the docker CLI, the Docker SDK, archives of every layout, bad ones."""
from __future__ import annotations

import asyncio
import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from runtime.client import Client
from tests.fixtures.archives import legacy_archive, oci_layout, tar_of
from tests.fixtures.daemons import EngineDaemon
from tests.fixtures.images import Image, busybox_image, canonical_json, sha256_digest, whiteout_image


@pytest.fixture
def engine(hub_engine: EngineDaemon) -> EngineDaemon:
    """Docker Hub mirrored by the fixture registry, so `busybox` resolves offline."""
    return hub_engine


def docker_cli(engine: EngineDaemon, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=engine.env(), capture_output=True, timeout=120, check=False,
                          input=stdin.decode("latin-1") if stdin is not None else None, text=True,
                          encoding="latin-1")


def ok(engine: EngineDaemon, *args: str) -> str:
    out = docker_cli(engine, *args)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def rows(engine: EngineDaemon, *args: str) -> list[str]:
    return sorted(ok(engine, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", *args).splitlines())


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def stored(engine: EngineDaemon) -> tuple[set[str], set[str]]:
    """(content digests, image record names) the engine's runtime namespace holds."""
    async def go() -> tuple[set[str], set[str]]:
        async with Client(engine.runtime.address, "pyengine") as c:
            return {i.digest for i in await c.content()}, {i.name for i in await c.images()}

    return asyncio.run(go())


def load_file(engine: EngineDaemon, tmp_path: Path, data: bytes) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "in.tar"
    path.write_bytes(data)
    return docker_cli(engine, "load", "-i", str(path))


def test_cli_save_load_round_trip_runs(engine, tmp_path, images):
    image = images["library/busybox:latest"]
    ok(engine, "pull", "busybox")
    archive = tmp_path / "busybox.tar"
    ok(engine, "save", "-o", str(archive), "busybox")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= names
    assert manifest == [{"Config": f"blobs/sha256/{image.config_digest[7:]}", "RepoTags": ["busybox:latest"],
                         "Layers": [f"blobs/sha256/{d[7:]}" for d in image.layer_digests]}]
    assert index["manifests"][0]["digest"] == image.digest
    assert index["manifests"][0]["annotations"] == {"io.containerd.image.name": "docker.io/library/busybox:latest",
                                                    "org.opencontainers.image.ref.name": "latest"}

    ok(engine, "rmi", "busybox")
    assert rows(engine) == []
    assert ok(engine, "load", "-i", str(archive)) == "Loaded image: busybox:latest\n"
    assert rows(engine) == [f"busybox:latest {short(image.config_digest)}"]
    # A loaded name is a tag, not a pull: no repository digest, as in dockerd.
    assert json.loads(ok(engine, "image", "inspect", "busybox"))[0]["RepoDigests"] == []
    assert ok(engine, "run", "--rm", "busybox", "echo", "loaded") == "loaded\n"
    # The same archive again changes nothing.
    assert ok(engine, "load", "-i", str(archive)) == "Loaded image: busybox:latest\n"
    assert rows(engine) == [f"busybox:latest {short(image.config_digest)}"]


def test_save_several_names_and_unknown(engine, tmp_path):
    ok(engine, "pull", "busybox")
    ok(engine, "tag", "busybox", "one:1")
    ok(engine, "tag", "busybox", "two/x:2")
    archive = tmp_path / "many.tar"
    ok(engine, "save", "-o", str(archive), "one:1", "two/x:2")
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert len(manifest) == 1 and manifest[0]["RepoTags"] == ["one:1", "two/x:2"]
    ok(engine, "rmi", "one:1", "two/x:2")
    assert ok(engine, "load", "-i", str(archive)) == "Loaded image: one:1\nLoaded image: two/x:2\n"

    # A repository name alone saves all its tags.
    ok(engine, "tag", "busybox", "one:other")
    ok(engine, "save", "-o", str(archive), "one")
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sorted(manifest[0]["RepoTags"]) == ["one:1", "one:other"]

    missing = docker_cli(engine, "save", "-o", str(tmp_path / "x.tar"), "nosuch:1")
    assert missing.returncode != 0 and "reference does not exist" in missing.stderr
    missing = docker_cli(engine, "save", "-o", str(tmp_path / "x.tar"), "nosuch")
    assert missing.returncode != 0 and "No such image: nosuch" in missing.stderr


def test_sdk_save_by_id_and_load(engine, sdk, images):
    image = images["library/busybox:latest"]
    sdk.images.pull("busybox")
    data = b"".join(sdk.images.get("busybox").save())  # by ID: no names in the archive
    manifest = json.load(tarfile.open(fileobj=io.BytesIO(data)).extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] is None
    sdk.images.remove("busybox")

    events = sdk.events(decode=True, filters={"type": "image"})
    loaded = sdk.images.load(data)
    assert [i.id for i in loaded] == [image.config_digest]
    assert loaded[0].tags == []
    assert rows(engine, "--filter", "dangling=true") == [f"<none>:<none> {short(image.config_digest)}"]
    event = next(iter(events))
    events.close()
    assert (event["Action"], event["Actor"]["ID"]) == ("load", image.config_digest)

    # Several names at once: GET /images/get?names=…
    sdk.images.pull("busybox")
    sdk.images.get("busybox").tag("again", "1")
    resp = sdk.api._get(sdk.api._url("/images/get"), params={"names": ["busybox:latest", "again:1"]})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/x-tar"
    raw = resp.content
    manifest = json.load(tarfile.open(fileobj=io.BytesIO(raw)).extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["busybox:latest", "again:1"]


def test_load_moves_a_tag_and_keeps_the_old_image_dangling(engine, tmp_path, images):
    ok(engine, "pull", "busybox")
    old = images["library/busybox:latest"].config_digest
    other = whiteout_image()
    out = load_file(engine, tmp_path, legacy_archive(other, ["busybox:latest"]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"The image busybox:latest already exists, renaming the old one with ID {old} to empty string",
        "Loaded image: busybox:latest"]
    assert rows(engine) == sorted([f"busybox:latest {short(other.config_digest)}", f"<none>:<none> {short(old)}"])


def test_dockerd_2010_layout_with_symlinked_layer_loads_and_runs(engine, tmp_path):
    out = load_file(engine, tmp_path, legacy_archive(busybox_image(), ["legacy:1"], duplicate_layer=True))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Loaded image: legacy:1\n"
    assert ok(engine, "run", "--rm", "legacy:1", "cat", "/etc/passwd").startswith("root:")


def test_oci_layout_archives_load(engine, tmp_path):
    image = busybox_image(compression="zstd")
    assert load_file(engine, tmp_path, oci_layout(image, ["docker.io/library/oci:1"])).stdout == "Loaded image: oci:1\n"
    assert ok(engine, "run", "--rm", "oci:1", "echo", "zstd") == "zstd\n"
    # A bare ref.name ("latest") names no repository: the image comes in by ID.
    plain = busybox_image(compression="gzip", media="docker")
    out = load_file(engine, tmp_path, oci_layout(plain, ref_names=["latest"]))
    assert out.stdout == f"Loaded image ID: {plain.config_digest}\n"
    # gzip-compressed archive of a whole layout.
    out = load_file(engine, tmp_path, gzip.compress(oci_layout(image, ["docker.io/library/gz:1"])))
    assert out.stdout == "Loaded image: gz:1\n", out.stderr


def _mismatching(image_tar: bytes, name: str, new: bytes) -> bytes:
    src = tarfile.open(fileobj=io.BytesIO(image_tar))
    entries: list[tuple[str, bytes | str | None]] = []
    for m in src.getmembers():
        if m.isdir():
            entries.append((m.name, None))
        elif m.issym():
            entries.append((m.name, "->" + m.linkname))
        else:
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            entries.append((m.name, new if m.name == name else data))
    return tar_of(entries)


def _with(image: Image, config: bytes, layer: str, layer_data: bytes) -> Image:
    """`image` with another config and its one layer replaced."""
    manifest = {**image.manifest_json,
                "config": {**image.manifest_json["config"], "digest": sha256_digest(config), "size": len(config)},
                "layers": [{**image.manifest_json["layers"][0], "digest": layer, "size": len(layer_data)}]}
    return Image(blobs={sha256_digest(config): config, layer: layer_data}, manifest=canonical_json(manifest),
                 media_type=image.media_type)


def test_bad_archives_store_nothing(engine, tmp_path):
    ok(engine, "pull", "busybox")
    before, before_rows = stored(engine), rows(engine)
    image = busybox_image(compression="gzip")
    good = oci_layout(image, ["docker.io/library/bad:1"])
    layer = image.layer_digests[0]

    truncated = load_file(engine, tmp_path, good[: len(good) // 2])
    assert truncated.returncode != 0 and "unexpected EOF" in truncated.stderr

    # A blob whose bytes are not its name's digest.
    corrupt = _mismatching(good, f"blobs/sha256/{layer[7:]}", image.blobs[layer][:-10] + b"0123456789")
    out = load_file(engine, tmp_path, corrupt)
    assert out.returncode != 0 and f"blob blobs/sha256/{layer[7:]} does not match its digest" in out.stderr

    # A legacy layer.tar whose content is not what the config's diff_ids say.
    legacy = legacy_archive(image, ["bad:2"])
    name = next(n for n in tarfile.open(fileobj=io.BytesIO(legacy)).getnames() if n.endswith("layer.tar"))
    out = load_file(engine, tmp_path, _mismatching(legacy, name, tar_of([("x", b"other")])))
    assert out.returncode != 0 and "layer 0" in out.stderr and "diff_id" in out.stderr

    # A compressed layer whose bytes are its digest's but not the diff_id its config names: checked while it is
    # applied, also when the snapshot that diff_id names exists already (busybox's, pulled above).
    other_layer = whiteout_image().layer_digests[-1]  # its first is busybox's own
    for config in (json.dumps({**image.config_json, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}),
                   json.dumps(image.config_json)):
        out = load_file(engine, tmp_path, oci_layout(_with(image, config.encode(), other_layer,
                                                           whiteout_image().blobs[other_layer]),
                                                     ["docker.io/library/bad:3"]))
        assert out.returncode != 0 and f"layer 0 (sha256:{other_layer[7:]})" in out.stderr, out.stderr
        assert "layer diff_id mismatch" in out.stderr

    # Documents nested past any real one's depth: bad input, told as such (not a RecursionError).
    deep = b"[" * 100_000 + b"]" * 100_000
    out = load_file(engine, tmp_path, tar_of([("manifest.json", deep)]))
    assert out.returncode != 0 and "exceeded max depth" in out.stderr and "RecursionError" not in out.stderr

    garbage = load_file(engine, tmp_path, b"not a tar at all" * 100)
    assert garbage.returncode != 0 and "invalid archive: not a tar or tar.gz archive" in garbage.stderr
    assert stored(engine) == before and rows(engine) == before_rows


def test_hostile_entries_are_refused_or_stay_inside(engine, tmp_path):
    before = stored(engine)
    for name in ("../escape", "/etc/escape"):
        out = load_file(engine, tmp_path, tar_of([(name, b"x"), ("manifest.json", b"[]")]))
        assert out.returncode != 0 and f"refusing archive entry {name!r}" in out.stderr
    # A symlink pointing out of the archive resolves inside it (in scope), as dockerd's load does.
    out = load_file(engine, tmp_path, tar_of([("cfg.json", "->/etc/passwd"),
                                              ("manifest.json", b'[{"Config":"cfg.json","Layers":[]}]')]))
    assert out.returncode != 0 and "'cfg.json' is not in the archive" in out.stderr
    assert not Path("/escape").exists() and not Path("/etc/escape").exists()
    assert stored(engine) == before


def test_load_progress_and_quiet_over_the_api(engine, sdk, tmp_path):
    image = busybox_image()
    data = legacy_archive(image, ["progress:1"])
    lines = [json.loads(x) for x in sdk.api._post(sdk.api._url("/images/load"), params={"quiet": "0"},
                                                  data=data).text.splitlines()]
    assert lines[0]["status"] == "Loading layer" and lines[0]["progressDetail"]["current"] > 0
    assert lines[-1] == {"stream": "Loaded image: progress:1\n"}
    quiet = sdk.api._post(sdk.api._url("/images/load"), data=data)
    assert quiet.headers["Content-Type"] == "application/json"
    assert [json.loads(x) for x in quiet.text.splitlines()] == [{"stream": "Loaded image: progress:1\n"}]
    # Its layers are stored now: loaded again, no layer is shown loading, as with dockerd.
    again = sdk.api._post(sdk.api._url("/images/load"), params={"quiet": "0"}, data=data)
    assert [json.loads(x) for x in again.text.splitlines()] == [{"stream": "Loaded image: progress:1\n"}]


def test_pyengine_cli_save_and_load(engine, tmp_path, images):
    image = images["library/busybox:latest"]
    ok(engine, "pull", "busybox")
    pyengine = [str(Path(sys.executable).parent / "pyengine"), "-H", engine.host]
    archive = tmp_path / "saved.tar"
    out = subprocess.run([*pyengine, "save", "-o", str(archive), "busybox"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()
    ok(engine, "rmi", "busybox")
    out = subprocess.run([*pyengine, "load", "-i", str(archive)], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "Loaded image: busybox:latest\n"), out.stderr
    assert rows(engine) == [f"busybox:latest {short(image.config_digest)}"]
    with open(tmp_path / "bad.tar", "wb") as bad:
        bad.write(b"x" * 2048)
    with open(tmp_path / "bad.tar", "rb") as bad:
        out = subprocess.run([*pyengine, "load"], stdin=bad, capture_output=True, text=True)
    assert out.returncode == 1 and "invalid archive" in out.stderr


def test_import_of_a_name_no_filesystem_takes_is_bad_input(engine, tmp_path):
    out = docker_cli(engine, "import", "-", "longname:1", stdin=tar_of([("d/" + "x" * 300, b"x")]))
    assert out.returncode != 0 and "file name too long" in out.stderr and "500" not in out.stderr, out.stderr
    assert "longname" not in ok(engine, "images", "--format", "{{.Repository}}")


def _rootfs_with_devices(*devices: tuple[str, int, int]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, major, minor in devices:
            member = tarfile.TarInfo(name)
            member.type, member.devmajor, member.devminor, member.mode = tarfile.CHRTYPE, major, minor, 0o666
            tar.addfile(member)
    return buf.getvalue()


def test_a_rootfs_with_the_standard_devices_imports_saves_and_loads(engine, tmp_path):
    # A debootstrap or chroot tarball has dev/null and its kind: the nodes every container has are taken.
    out = docker_cli(engine, "import", "-", "devroot:1", stdin=_rootfs_with_devices(("dev/null", 1, 3),
                                                                                  ("dev/tty", 5, 0)))
    assert out.returncode == 0, out.stderr
    archive = tmp_path / "devroot.tar"
    ok(engine, "save", "-o", str(archive), "devroot:1")
    ok(engine, "rmi", "devroot:1")
    assert ok(engine, "load", "-i", str(archive)).strip() == "Loaded image: devroot:1"
    ok(engine, "rmi", "devroot:1")
    # Any other device is refused, in words that name it.
    out = docker_cli(engine, "import", "-", "devroot:2", stdin=_rootfs_with_devices(("dev/mem", 1, 1)))
    assert out.returncode != 0 and "device nodes are not allowed (c 1:1)" in out.stderr, out.stderr
