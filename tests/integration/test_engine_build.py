"""docker build (the classic builder API) against pyengined, with the real docker CLI and the Docker SDK."""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path

import docker
import pytest

from engine.builder.cache import STEP_LABEL
from tests.fixtures.daemons import EngineDaemon

THREE_STAGES = """\
ARG BASE=busybox
FROM ${BASE} AS tools
ARG GREETING=hello
ENV GREETING=${GREETING}
WORKDIR /src
COPY greet.sh .
RUN chmod 755 greet.sh && echo "$GREETING" > message

FROM busybox AS data
COPY --chown=nobody:nobody data/ /data/
RUN ls -ln /data > /listing

FROM busybox
COPY --from=tools /src /app
COPY --from=data /listing /app/listing
USER nobody
WORKDIR /app
HEALTHCHECK --interval=30s CMD true
ENTRYPOINT ["/app/greet.sh"]
"""


@pytest.fixture
def engine(hub_engine: EngineDaemon) -> EngineDaemon:
    """Docker Hub mirrored by the fixture registry, so `busybox` resolves offline."""
    return hub_engine


def docker_cli(engine: EngineDaemon, *args: str, cwd: Path | None = None,
               stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env={**engine.env(), "DOCKER_BUILDKIT": "0"}, capture_output=True,
                          text=stdin is None, timeout=300, check=False, cwd=cwd, input=stdin)


def ok(engine: EngineDaemon, *args: str, cwd: Path | None = None) -> str:
    out = docker_cli(engine, *args, cwd=cwd)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return str(out.stdout)


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "data").mkdir(parents=True)
    (ctx / "greet.sh").write_text('#!/bin/sh\necho "$(cat /app/message) from $(id -u)"; cat /app/listing\n')
    (ctx / "data" / "a.txt").write_text("a\n")
    (ctx / "Dockerfile").write_text(THREE_STAGES)
    return ctx


def test_cli_three_stage_build_runs_and_rebuilds_from_cache(engine, tmp_path):
    ctx = _context(tmp_path)
    out = ok(engine, "build", "-t", "three:v1", "--build-arg", "GREETING=hi", ".", cwd=ctx)
    assert "Successfully tagged three:v1" in out, out
    run = ok(engine, "run", "--rm", "three:v1")
    lines = run.splitlines()
    assert lines[0] == "hi from 65534"
    assert any("65534" in line and "a.txt" in line for line in lines[1:]), run
    inspect = json.loads(ok(engine, "image", "inspect", "three:v1"))[0]
    assert inspect["Config"]["User"] == "nobody" and inspect["Config"]["WorkingDir"] == "/app"
    assert inspect["Config"]["Entrypoint"] == ["/app/greet.sh"]
    assert inspect["Config"]["Healthcheck"]["Interval"] == 30_000_000_000
    again = ok(engine, "build", "-t", "three:v1", "--build-arg", "GREETING=hi", ".", cwd=ctx)
    steps = [line for line in again.splitlines() if line.startswith("Step ")]
    # As the classic builder: the ARG before the first FROM is a step of its own.
    assert steps[0] == f"Step 1/{len(steps)} : ARG BASE=busybox", again
    assert again.count("Using cache") == len(steps) - 4, again  # every step but that ARG and the three FROMs
    assert "Running in" not in again


def test_cli_failed_run_reports_its_code_and_parse_errors_name_the_line(engine, tmp_path):
    ctx = tmp_path / "bad"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    logged = Path(engine.log_path).stat().st_size
    out = docker_cli(engine, "build", ".", cwd=ctx)
    assert out.returncode == 3, out
    assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in out.stderr + out.stdout
    (ctx / "Dockerfile").write_text("FROM busybox\nADD http://127.0.0.1:1/x /\n")
    out = docker_cli(engine, "build", ".", cwd=ctx)
    assert out.returncode == 1 and "ADD failed: http://127.0.0.1:1/x: Cannot connect" in out.stderr, out
    # The Dockerfile's failures are the client's news: a line each in the daemon's log, no traceback.
    log = Path(engine.log_path).read_bytes()[logged:].decode(errors="replace")
    assert log.count("build failed") == 2 and "Traceback" not in log, log
    (ctx / "Dockerfile").write_text("FROM busybox\nBOGUS x\n")
    out = docker_cli(engine, "build", ".", cwd=ctx)
    assert out.returncode == 1
    assert "dockerfile parse error line 2: unknown instruction: BOGUS" in out.stderr, out.stderr


def _tar(files: dict[str, str], gz: bool = False) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_sdk_build_options_and_stream(engine):
    client = docker.DockerClient(base_url=engine.host, version="auto")
    try:
        dockerfile = ("FROM busybox AS first\nRUN echo first > /f\n"
                      "FROM busybox AS second\nARG V\nRUN echo \"$V\" > /v && cat /etc/hosts > /hosts\n"
                      "COPY kept.txt /\n")
        ctx = _tar({"Dockerfile": dockerfile, "kept.txt": "kept\n", "ignored.txt": "no\n",
                    ".dockerignore": "ignored.txt\n"}, gz=True)
        image, logs = client.images.build(fileobj=ctx, custom_context=True, encoding="gzip", tag="sdk:v1",
                                          target="second", buildargs={"V": "value"},
                                          labels={"team": "a", "a.first": "1"},
                                          extra_hosts={"builder.test": "10.1.2.3"}, network_mode="bridge",
                                          cache_from=["busybox"])
        assert image.labels["team"] == "a" and image.labels["a.first"] == "1"
        # As dockerd: one LABEL step per label, in name order, at the target stage's end.
        steps = [line for m in logs for line in [m.get("stream", "")] if line.startswith("Step ")]
        assert steps[-2:] == ["Step 5/6 : LABEL a.first=1", "Step 6/6 : LABEL team=a"]
        out = client.containers.run("sdk:v1", ["sh", "-c", "cat /v /kept.txt; grep builder.test /hosts; "
                                               "ls /ignored.txt /f 2>&1 || true"], remove=True).decode()
        assert "value\nkept\n" in out and "10.1.2.3" in out
        assert "No such file" in out
        stream = list(client.api.build(fileobj=_tar({"Dockerfile": "FROM busybox\nENV A=1\n"}), custom_context=True,
                                       decode=True))
        assert stream[-1]["stream"].startswith("Successfully built ")
        assert any("aux" in m for m in stream)
    finally:
        client.close()


def test_buildkit_syntax_cache_mount_and_heredoc(engine, tmp_path):
    ctx = tmp_path / "bk"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "ARG RUNID\n"
        "RUN --mount=type=cache,target=/cache echo \"$RUNID\" >> /cache/runs && cat /cache/runs > /seen\n"
        "RUN <<EOF\nset -e\necho heredoc > /heredoc\nEOF\n")
    ok(engine, "build", "-t", "bk:1", "--build-arg", "RUNID=one", ".", cwd=ctx)
    ok(engine, "build", "-t", "bk:2", "--build-arg", "RUNID=two", ".", cwd=ctx)
    assert ok(engine, "run", "--rm", "bk:2", "cat", "/seen", "/heredoc") == "one\ntwo\nheredoc\n"


def test_commit_with_changes_and_import(engine, tmp_path):
    ok(engine, "run", "--name", "src", "busybox", "sh", "-c", "echo made > /made")
    image_id = ok(engine, "commit", "--change", "CMD [\"cat\", \"/made\"]", "--change", "ENV COMMITTED=yes",
                  "src", "committed:v1").strip()
    assert image_id.startswith("sha256:")
    assert ok(engine, "run", "--rm", "committed:v1") == "made\n"
    assert "COMMITTED=yes" in ok(engine, "run", "--rm", "committed:v1", "env")
    # As dockerd: the changes apply over the container's own config (PATH stays first).
    env = json.loads(ok(engine, "image", "inspect", "-f", "{{json .Config.Env}}", "committed:v1"))
    assert env[0].startswith("PATH=") and env[-1] == "COMMITTED=yes", env
    rootfs = tmp_path / "rootfs.tar"
    ok(engine, "export", "-o", str(rootfs), "src")
    imported = ok(engine, "import", "--change", "CMD [\"/bin/cat\", \"/made\"]", str(rootfs), "imported:v1").strip()
    assert imported.startswith("sha256:")
    assert ok(engine, "run", "--rm", "imported:v1") == "made\n"
    history = ok(engine, "history", "--no-trunc", "--format", "{{.Comment}}", "imported:v1")
    assert "Imported from -" in history
    out = docker_cli(engine, "import", "-", "notatar", stdin=b"this is not a tar archive at all" * 40)
    assert out.returncode != 0
    # As dockerd: nothing at all is an empty root filesystem; HEALTHCHECK is one of the changes allowed.
    out = docker_cli(engine, "import", "-c", "HEALTHCHECK CMD true", "-", "empty:v1", stdin=b"")
    assert out.returncode == 0 and out.stdout.startswith(b"sha256:"), out.stderr
    check = json.loads(ok(engine, "image", "inspect", "-f", "{{json .Config.Healthcheck}}", "empty:v1"))
    assert check == {"Test": ["CMD-SHELL", "true"]}
    ok(engine, "rmi", "empty:v1")


def test_compose_build_with_context_dockerfile_args_and_target(engine, tmp_path):
    project = tmp_path / "proj"
    (project / "app" / "build").mkdir(parents=True)
    (project / "app" / "msg.txt").write_text("from the context\n")
    (project / "app" / "build" / "Dockerfile.app").write_text(
        "FROM busybox AS base\nARG MSG\nRUN echo \"$MSG\" > /msg\n"
        "FROM base AS final\nCOPY msg.txt /ctx\n"
        "FROM busybox AS unused\nRUN exit 1\n")
    (project / "docker-compose.yml").write_text(
        "version: '3.8'\nservices:\n  app:\n    build:\n      context: ./app\n      dockerfile: build/Dockerfile.app\n"
        "      args:\n        MSG: composed\n      target: final\n    image: composed-app:latest\n"
        "    command: [\"cat\", \"/msg\", \"/ctx\"]\n")
    env = {**engine.env(), "COMPOSE_PROJECT_NAME": "buildproj"}
    try:
        out = subprocess.run(["docker-compose", "up", "--build", "--abort-on-container-exit"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "composed" in out.stdout and "from the context" in out.stdout, out.stdout
    finally:
        subprocess.run(["docker-compose", "down", "--rmi", "local"], cwd=project, env=env, capture_output=True,
                       timeout=120, check=False)


def _containers(engine: EngineDaemon) -> list[str]:
    return ok(engine, "ps", "-aq").split()


def test_failed_builds_leave_no_tag_and_only_what_forcerm_allows(engine, tmp_path):
    ctx = tmp_path / "fail"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo start && exit 7\n")
    out = docker_cli(engine, "build", "--force-rm", "-t", "half:v1", ".", cwd=ctx)
    assert out.returncode == 7, out
    assert _containers(engine) == []
    assert ok(engine, "images", "-q", "half") == ""
    out = docker_cli(engine, "build", "-t", "half:v1", ".", cwd=ctx)
    assert out.returncode == 7
    assert len(_containers(engine)) == 1, "without --force-rm the failed step's container stays, as dockerd's"
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY ../outside /x\n")
    out = docker_cli(engine, "build", ".", cwd=ctx)
    assert out.returncode != 0 and "outside the build context" in out.stderr + out.stdout, out


def test_a_client_that_leaves_cancels_the_build_and_its_containers(engine, tmp_path):
    import socket
    import time
    ctx = _tar({"Dockerfile": "FROM busybox\nRUN echo $((6*7)) && sleep 60\n"})
    body = ctx.getvalue()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(engine.host.removeprefix("unix://"))
    sock.sendall(b"POST /v1.41/build?t=cancelled HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    seen = b""
    while b"42\\n" not in seen:  # the RUN's own output, not its step line
        chunk = sock.recv(65536)
        assert chunk, seen
        seen += chunk
    assert len(_containers(engine)) == 1
    sock.close()
    for _ in range(60):
        if not _containers(engine):
            break
        time.sleep(0.5)
    assert _containers(engine) == []
    assert ok(engine, "images", "-q", "cancelled") == ""


def test_cache_from_an_image_rebuilds_nothing_after_the_cache_is_pruned(engine, tmp_path):
    ctx = tmp_path / "cf"
    ctx.mkdir()
    (ctx / "f.txt").write_text("content\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=1\nCOPY f.txt /\nRUN echo ran > /ran\nCMD [\"cat\", \"/ran\"]\n")
    ok(engine, "build", "-t", "cf:src", ".", cwd=ctx)
    source = json.loads(ok(engine, "image", "inspect", "cf:src"))[0]["Id"]
    pruned = json.loads(subprocess.run(["curl", "-s", "--unix-socket", engine.host.removeprefix("unix://"), "-X",
                                        "POST", "http://d/v1.50/build/prune?all=1"], capture_output=True, text=True,
                                       check=True).stdout)
    assert pruned["CachesDeleted"], pruned
    out = ok(engine, "build", "--cache-from", "cf:src", "-t", "cf:again", ".", cwd=ctx)
    assert "Running in" not in out and out.count("Using cache") == 4, out
    assert json.loads(ok(engine, "image", "inspect", "cf:again"))[0]["Id"] == source
    df = json.loads(subprocess.run(["curl", "-s", "--unix-socket", engine.host.removeprefix("unix://"),
                                    "http://d/v1.50/system/df"], capture_output=True, text=True, check=True).stdout)
    assert len(df["BuildCache"]) >= 4
    # Each step's record names the one it was built on; clients before 1.42 read one `Parent`.
    ids = {r["ID"] for r in df["BuildCache"]}
    assert any(r["Parents"] and r["Parents"][0] in ids for r in df["BuildCache"])
    assert all(_time(r["LastUsedAt"]) >= _time(r["CreatedAt"]) for r in df["BuildCache"])
    old = json.loads(subprocess.run(["curl", "-s", "--unix-socket", engine.host.removeprefix("unix://"),
                                     "http://d/v1.41/system/df"], capture_output=True, text=True, check=True).stdout)
    assert all("Parents" not in r for r in old["BuildCache"]) and any(r["Parent"] in ids for r in old["BuildCache"])
    without = ok(engine, "build", "--no-cache", ".", cwd=ctx)
    assert "Running in" in without and "Using cache" not in without


def _time(rfc3339: str) -> float:
    return datetime.datetime.fromisoformat(re.sub(r"(\.\d{1,6})\d*", r"\1", rfc3339.replace("Z", "+00:00"))).timestamp()


@pytest.fixture
def http_files(tmp_path):
    """A local HTTP server over a directory (ADD and import fetch from URLs)."""
    import functools
    import http.server
    import threading
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_add_urls_and_archives_copy_heredocs_link_onbuild_and_bind_mounts(engine, tmp_path, http_files):
    www, base = http_files
    (www / "remote.txt").write_text("remote\n")
    ctx = tmp_path / "adds"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "inner.txt").write_text("inner\n")
    with tarfile.open(ctx / "bundle.tar.gz", "w:gz") as tar:
        tar.add(str(ctx / "src" / "inner.txt"), arcname="unpacked/inner.txt")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        f"ADD {base}/remote.txt /fetched/\n"
        "ADD bundle.tar.gz /archive/\n"
        "COPY --link src/ /linked/\n"
        "COPY <<EOF /heredoc.txt\nwritten by a heredoc\nEOF\n"
        "RUN --mount=type=bind,source=src,target=/mnt cat /mnt/inner.txt > /from-bind\n"
        "ONBUILD RUN echo triggered > /onbuild\n")
    ok(engine, "build", "-t", "adds:parent", ".", cwd=ctx)
    out = ok(engine, "run", "--rm", "adds:parent", "sh", "-c",
             "cat /fetched/remote.txt /archive/unpacked/inner.txt /linked/inner.txt /heredoc.txt /from-bind; "
             "stat -c %a /fetched/remote.txt; ls /onbuild 2>&1 || true")
    assert out.splitlines()[:6] == ["remote", "inner", "inner", "written by a heredoc", "inner", "600"], out
    assert "No such file" in out
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM adds:parent\n")
    built = ok(engine, "build", "-t", "adds:child", ".", cwd=child)
    assert "Executing 1 build trigger" in built
    assert ok(engine, "run", "--rm", "adds:child", "cat", "/onbuild") == "triggered\n"
    assert json.loads(ok(engine, "image", "inspect", "adds:child"))[0]["Config"]["OnBuild"] in (None, [])


def test_import_from_a_url_and_a_dockerfile_on_stdin(engine, tmp_path, http_files):
    www, base = http_files
    with tarfile.open(www / "rootfs.tar", "w") as tar:
        data = b"from a url\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ok(engine, "import", f"{base}/rootfs.tar", "fromurl:v1")
    assert "fromurl" in ok(engine, "images", "--format", "{{.Repository}}")
    out = docker_cli(engine, "build", "-t", "stdin:v1", "-", stdin=b"FROM busybox\nRUN echo from-stdin > /s\n")
    assert out.returncode == 0, out
    assert ok(engine, "run", "--rm", "stdin:v1", "cat", "/s") == "from-stdin\n"


def test_sdk_build_from_a_path_with_a_dockerfile_outside_it(engine, tmp_path):
    ctx = tmp_path / "sdkctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    outside = tmp_path / "outside.Dockerfile"
    outside.write_text("FROM busybox\nCOPY a.txt /a.txt\n")
    client = docker.DockerClient(base_url=engine.host, version="auto")
    try:
        image, _ = client.images.build(path=str(ctx), dockerfile=str(outside), tag="sdkpath:v1", rm=True)
        assert client.containers.run("sdkpath:v1", ["cat", "/a.txt"], remove=True) == b"a\n"
    finally:
        client.close()


def test_the_build_cache_survives_a_daemon_restart(engine, runtime_daemon, tmp_path):
    ctx = tmp_path / "restart"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo once > /once\n")
    ok(engine, "build", "-t", "survives:v1", ".", cwd=ctx)
    engine.restart()
    runtime_daemon.restart()
    again = ok(engine, "build", "-t", "survives:v1", ".", cwd=ctx)
    assert "Using cache" in again and "Running in" not in again, again


def test_a_hostile_context_writes_nothing_outside_and_says_which_entry(engine, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\n"), ("../../escaped.txt", b"no")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = subprocess.run(["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}", "--unix-socket",
                          engine.host.removeprefix("unix://"), "-X", "POST", "-H", "Content-Type: application/x-tar",
                          "--data-binary", "@-", "http://d/v1.50/build"], input=buf.getvalue(), capture_output=True,
                         check=True)
    assert out.stdout == b"400", out
    assert b"escaped.txt" in out.stderr and b"message" in out.stderr
    assert not list(Path(engine.runtime.base).parent.rglob("escaped.txt"))


def test_independent_stages_run_at_the_same_time_and_unneeded_ones_not_at_all(engine, tmp_path):
    ctx = tmp_path / "par"
    ctx.mkdir()
    step = "RUN cut -d' ' -f1 /proc/uptime > /start && sleep 2 && cut -d' ' -f1 /proc/uptime > /end"
    (ctx / "Dockerfile").write_text(
        f"FROM busybox AS one\n{step}\n"
        f"FROM busybox AS two\n{step}\n"
        "FROM busybox AS never\nRUN exit 9\n"
        "FROM busybox\nCOPY --from=one /start /one.start\nCOPY --from=one /end /one.end\n"
        "COPY --from=two /start /two.start\nCOPY --from=two /end /two.end\n")
    out = ok(engine, "build", "-t", "par:v1", ".", cwd=ctx)
    assert "exit 9" not in out
    times = [float(x) for x in ok(engine, "run", "--rm", "par:v1", "cat", "/one.start", "/one.end", "/two.start",
                                "/two.end").split()]
    one, two = (times[0], times[1]), (times[2], times[3])
    assert one[0] < two[1] and two[0] < one[1], "the two stages' RUNs overlapped in time"
    steps = [line for line in out.splitlines() if line.startswith("Step ")]
    assert steps[0].startswith("Step 1/") and [s.split(" :")[0] for s in steps] == \
        [f"Step {i}/{len(steps)}" for i in range(1, len(steps) + 1)], "numbered in order"


COPY_OVER_AN_IMAGE = """\
FROM busybox
RUN mkdir -p /srv/deep/sub && chown 1000:1001 /srv/deep && chmod 750 /srv/deep && chmod 700 /srv/deep/sub \\
    && ln -s /srv/deep /linked && echo old > /srv/deep/keep
COPY a.txt /tmp/in-tmp/
COPY --chown=1000:1001 tree/ /srv/deep/
COPY a.txt /linked/through-link.txt
COPY a.txt /srv/deep/keep
WORKDIR /tmp/work/here
"""


def _layer_entries(engine: EngineDaemon, tag: str, tmp_path: Path, index: int) -> dict[str, tarfile.TarInfo]:
    saved = tmp_path / "saved.tar"
    ok(engine, "save", "-o", str(saved), tag)
    with tarfile.open(saved) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = archive.extractfile(manifest[0]["Layers"][index])
        assert layer is not None
        with tarfile.open(fileobj=io.BytesIO(layer.read())) as tar:
            return {m.name.rstrip("/"): m for m in tar.getmembers()}


def test_copy_keeps_the_image_directories_on_the_way_and_their_owners(engine, tmp_path):
    """What a COPY puts over an image: the directories it passes keep the image's owner and mode (in the
    image and in its layer, as dockerd would apply it), new ones are the copy's, a symlink on the way is
    followed, an existing file is replaced."""
    ctx = tmp_path / "ctx"
    (ctx / "tree" / "sub").mkdir(parents=True)
    (ctx / "tree" / "sub").chmod(0o755)
    (ctx / "tree" / "sub" / "f").write_text("f\n")
    (ctx / "a.txt").write_text("a\n")
    (ctx / "Dockerfile").write_text(COPY_OVER_AN_IMAGE)
    ok(engine, "build", "-q", "-t", "copyover:1", str(ctx))
    try:
        shown = ok(engine, "run", "--rm", "copyover:1", "stat", "-c", "%n %a %u:%g", "/tmp", "/tmp/in-tmp",
                   "/tmp/in-tmp/a.txt", "/srv/deep", "/srv/deep/sub", "/srv/deep/sub/f", "/srv/deep/through-link.txt",
                   "/tmp/work", "/tmp/work/here")
        assert shown.splitlines() == [
            "/tmp 1777 0:0", "/tmp/in-tmp 755 0:0", "/tmp/in-tmp/a.txt 644 0:0", "/srv/deep 750 1000:1001",
            "/srv/deep/sub 755 1000:1001", "/srv/deep/sub/f 644 1000:1001", "/srv/deep/through-link.txt 644 0:0",
            "/tmp/work 755 0:0", "/tmp/work/here 755 0:0"]
        assert ok(engine, "run", "--rm", "copyover:1", "cat", "/srv/deep/keep") == "a\n"
        assert ok(engine, "run", "--rm", "copyover:1", "sh", "-c", "pwd") == "/tmp/work/here\n"
        copied = _layer_entries(engine, "copyover:1", tmp_path, 2)  # busybox, RUN, then COPY into /tmp
        assert sorted(copied) == ["tmp", "tmp/in-tmp", "tmp/in-tmp/a.txt"]
        assert (copied["tmp"].mode, copied["tmp"].uid) == (0o1777, 0)
        deep = _layer_entries(engine, "copyover:1", tmp_path, 3)
        assert {k: (m.mode, m.uid, m.gid) for k, m in deep.items() if k in ("srv", "srv/deep", "srv/deep/sub")} == {
            "srv": (0o755, 0, 0), "srv/deep": (0o750, 1000, 1001), "srv/deep/sub": (0o755, 1000, 1001)}
    finally:
        ok(engine, "rmi", "copyover:1")


def test_a_cache_record_removed_behind_the_engine_is_a_miss(engine, tmp_path):
    # The engine keeps the build cache's records in memory; whoever removes one (here the runtime's own API,
    # as pyctr does), the runtime's events take it out, and the step runs again.
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n")
    ok(engine, "build", "-t", "behind:1", ".", cwd=ctx)
    assert "Running in" not in ok(engine, "build", "-t", "behind:1", ".", cwd=ctx)

    async def remove_second_step() -> None:
        client = engine.runtime.client("pyengine")
        try:
            record = next(i for i in await client.images() if i.labels.get(STEP_LABEL) == "RUN echo two > /two")
            await client.remove_image(record.name)
        finally:
            await client.close()

    asyncio.run(remove_second_step())
    again = ok(engine, "build", "-t", "behind:1", ".", cwd=ctx)
    assert again.count("Using cache") == 1 and again.count("Running in") == 1, again
    assert ok(engine, "run", "--rm", "behind:1", "cat", "/one", "/two") == "one\ntwo\n"


def test_copy_from_follows_symlinks_inside_the_image_never_on_the_host(engine, tmp_path):
    ctx = tmp_path / "links"
    ctx.mkdir()
    (ctx / "plain.gz").write_bytes(__import__("gzip").compress(b"not a tar\n"))
    # /etc/os-release exists on the host: a link followed there would copy the host's file.
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS s\nRUN echo inside > /f && ln -s /f /l && mkdir -p /etc && echo image > /etc/os-release"
        " && ln -s /etc/os-release /h\n"
        "FROM busybox\nCOPY --from=s /l /l\nCOPY --from=s /h /h\nCOPY --from=busybox /bin/true /t\n"
        "ADD plain.gz /g/\nSTOPSIGNAL SIGUSR1\n")
    ok(engine, "build", "-q", "--network", "none", "-t", "links:v1", str(ctx))
    out = ok(engine, "run", "--rm", "--network", "none", "links:v1", "sh", "-c",
             "cat /l /h; [ -L /l ] || echo regular; ls /g; [ -x /t ] && echo runs")
    assert out == "inside\nimage\nregular\nplain.gz\nruns\n"
    ok(engine, "rmi", "links:v1")


def test_a_bad_stop_signal_fails_the_build_and_proxies_stay_out_of_history(engine, tmp_path):
    ctx = tmp_path / "sig"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nSTOPSIGNAL NOPE\n")
    out = docker_cli(engine, "build", "-q", "--network", "none", str(ctx))
    assert out.returncode != 0 and "Invalid signal: NOPE" in out.stderr
    # A quiet build that fails shows what it held back, as dockerd does.
    assert "Step 2/2 : STOPSIGNAL NOPE" in out.stderr + out.stdout
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo \"$HTTP_PROXY\" > /proxy\n")
    ok(engine, "build", "-q", "--network", "none", "--build-arg", "HTTP_PROXY=http://user:secret@p:1", "-t",
       "proxied:v1", str(ctx))
    assert ok(engine, "run", "--rm", "--network", "none", "proxied:v1", "cat", "/proxy") == "http://user:secret@p:1\n"
    assert "secret" not in ok(engine, "history", "--no-trunc", "proxied:v1")
    # Another proxy is no reason to run the step again.
    again = ok(engine, "build", "--network", "none", "--build-arg", "HTTP_PROXY=http://q:2", "-t", "proxied:v1",
               str(ctx))
    assert "Using cache" in again
    ok(engine, "rmi", "proxied:v1")


def test_a_rebuilt_tag_leaves_its_old_image_dangling_for_prune(engine, tmp_path):
    ctx = tmp_path / "again"
    ctx.mkdir()
    ids = []
    for word in ("one", "two"):
        (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN echo {word} > /x\n")
        ids.append(ok(engine, "build", "-q", "--network", "none", "-t", "again:v1", str(ctx)).strip())
    dangling = ok(engine, "images", "-q", "--no-trunc", "-f", "dangling=true").split()
    assert ids[0] in dangling and ids[1] not in dangling
    assert ids[0] in ok(engine, "image", "prune", "-f")
    assert ids[0] not in ok(engine, "images", "-a", "-q", "--no-trunc")
    ok(engine, "rmi", "again:v1")


def test_sdk_build_from_a_git_repository(engine, tmp_path, http_files):
    www, base = http_files
    work = tmp_path / "gitwork"
    (work / "app").mkdir(parents=True)
    (work / "app" / "Dockerfile").write_text("FROM busybox\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n")
    (work / "app" / "msg").write_text("from a repository\n")
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"], ["tag", "v1"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(www / "app.git")], env=env, check=True,
                   capture_output=True)
    subprocess.run(["git", "update-server-info"], cwd=www / "app.git", env=env, check=True, capture_output=True)
    sdk = docker.DockerClient(base_url=engine.host)
    try:
        # docker-py (and docker-compose's `build: <git url>`) send a git URL as the `remote` context.
        image, _ = sdk.images.build(path=f"{base}/app.git#v1:app", tag="fromgit:v1")
        assert sdk.containers.run("fromgit:v1", remove=True, network_mode="none") == b"from a repository\n"
        with pytest.raises(docker.errors.APIError, match="error fetching"):
            sdk.images.build(path=f"{base}/app.git#nosuch")
        sdk.images.remove("fromgit:v1")
    finally:
        sdk.close()


def test_copy_from_with_wildcards_and_into_directories(engine, tmp_path):
    ctx = tmp_path / "globs"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS s\n"
        "RUN echo 1 > /f1 && echo 2 > /f2 && mkdir -p /d/sub && echo 3 > /d/f3 && echo 4 > /d/sub/f4"
        " && ln -s /f1 /d/l1\n"
        "FROM busybox\nCOPY --from=s /f1 /f2 /dir/\nCOPY --from=s /f1 /one/\nCOPY --from=s /f* /w/\n"
        "COPY --from=s /d/f? /single\nCOPY --from=s /d/* /star/\n")
    ok(engine, "build", "-q", "--network", "none", "-t", "globs:v1", str(ctx))
    out = ok(engine, "run", "--rm", "--network", "none", "globs:v1", "sh", "-c",
             "find /dir /one /w /star -type f | sort; cat /single /star/l1")
    # As dockerd: files go under a destination ending in '/', a matched directory brings its contents, and a
    # matched symlink is followed in the stage's root.
    assert out.split() == ["/dir/f1", "/dir/f2", "/one/f1", "/star/f3", "/star/f4", "/star/l1", "/w/f1", "/w/f2",
                           "3", "1"]
    (ctx / "Dockerfile").write_text("FROM busybox AS s\nFROM busybox\nCOPY --from=s /nomatch* /x/\n")
    out = docker_cli(engine, "build", "-q", "--network", "none", str(ctx))
    assert out.returncode != 0 and "no source files were specified" in out.stderr
    ok(engine, "rmi", "globs:v1")


def test_from_scratch_has_the_default_path(engine, tmp_path):
    ctx = tmp_path / "scratch"
    ctx.mkdir()
    (ctx / "f").write_text("x\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    ok(engine, "build", "-q", "-t", "fromscratch:v1", str(ctx))
    env = json.loads(ok(engine, "image", "inspect", "-f", "{{json .Config.Env}}", "fromscratch:v1"))
    assert env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    ok(engine, "rmi", "fromscratch:v1")


def test_a_build_sees_the_images_own_etc_files(engine, tmp_path):
    """/etc/hostname, hosts and resolv.conf are the image's in COPY and ADD, not the files a running container
    gets mounted (a whole-root copy once carried the build's hostname and the host's resolver into images)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a\n")
    (ctx / "hosts").write_text("MINE\n")
    (ctx / "Dockerfile").write_text("FROM busybox AS s\nCOPY hosts /etc/hosts\nCOPY a /etc/hostname/\n"
                                    "FROM scratch\nCOPY --from=s / /\n")
    ok(engine, "build", "-q", "-t", "etcfiles:1", str(ctx))
    try:
        entries = _layer_entries(engine, "etcfiles:1", tmp_path, 0)
        assert "etc/hostname/a" in entries and "etc/resolv.conf" not in entries
        (ctx / "Dockerfile").write_text("FROM busybox\nCOPY --from=etcfiles:1 /etc/hosts /h\nCMD [\"cat\", \"/h\"]\n")
        ok(engine, "build", "-q", "-t", "etcfiles:2", str(ctx))
        assert ok(engine, "run", "--rm", "etcfiles:2") == "MINE\n"
    finally:
        ok(engine, "rmi", "etcfiles:1", "etcfiles:2")


def test_expose_with_a_host_part_workdir_as_written_and_onto_a_file(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nEXPOSE 127.0.0.1:8080:80/udp 9000:90 91\nWORKDIR /trail/\n")
    ok(engine, "build", "-q", "-t", "exposed:1", str(ctx))
    try:
        config = json.loads(ok(engine, "image", "inspect", "exposed:1"))[0]["Config"]
        assert sorted(config["ExposedPorts"]) == ["80/udp", "90/tcp", "91/tcp"]
        assert config["WorkingDir"] == "/trail/"
    finally:
        ok(engine, "rmi", "exposed:1")
    (ctx / "Dockerfile").write_text("FROM busybox\nWORKDIR /bin/sh\n")
    out = docker_cli(engine, "build", "-q", str(ctx))
    assert out.returncode != 0 and "Cannot mkdir: /bin/sh is not a directory" in out.stderr, out.stderr


def test_builder_prune_takes_buildkits_filters_and_space_options(engine, tmp_path):
    ctx = tmp_path / "bp"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo one > /one\nRUN head -c 3000 /dev/zero > /two\n")
    ok(engine, "build", "-q", ".", cwd=ctx)

    def cached() -> int:
        return len(docker.DockerClient(base_url=engine.host).df()["BuildCache"] or [])

    steps = cached()
    assert steps >= 2
    # Room enough, nothing recent enough to be unused, a type no record has: nothing goes, and no error.
    for args in (["--keep-storage", "1GB"], ["--filter", "unused-for=1h"], ["--filter", "type=exec.cachemount"],
                 ["--filter", "inuse=true"]):
        assert ok(engine, "builder", "prune", "-af", *args).endswith("Total reclaimed space: 0B\n"), args
    assert cached() == steps
    refused = docker_cli(engine, "builder", "prune", "-af", "--filter", "until=1h", "--filter", "unused-for=1h")
    assert refused.returncode == 1 and "failed to prune build cache: conflicting filters" in refused.stderr
    # A cap of one byte leaves only what fits under it: the cache goes, oldest first, until it is under.
    ok(engine, "builder", "prune", "-af", "--keep-storage", "1")
    assert cached() == 0
    # system prune hands label! on too; no record has labels, so it excludes none.
    ok(engine, "build", "-q", ".", cwd=ctx)
    assert "Total reclaimed space" in ok(engine, "system", "prune", "-af", "--filter", "label!=keep=1")
    assert cached() == 0


def test_a_prune_without_all_keeps_the_steps_of_named_images(engine, tmp_path):
    """BuildKit keeps what an image still uses (dockerd 20.10 a tagged image's parents): the build hits again."""
    ctx = tmp_path / "kept"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=1\nRUN echo a > /a\nRUN echo b > /b\n")
    first = ok(engine, "build", "-q", "-t", "kept:1", ".", cwd=ctx).strip()
    # A build no image has a name from any more: its first step's record is what a prune without -a takes.
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo lost > /lost\nRUN echo gone > /gone\n")
    ok(engine, "rmi", ok(engine, "build", "-q", ".", cwd=ctx).strip())
    pruned = ok(engine, "builder", "prune", "-f")
    assert pruned.startswith("Deleted build cache objects:\n") and len(pruned.split("\n\n")[0].splitlines()) == 2, \
        pruned
    ok(engine, "system", "prune", "-f")
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=1\nRUN echo a > /a\nRUN echo b > /b\n")
    again = docker_cli(engine, "build", "-t", "kept:1", ".", cwd=ctx)
    assert again.returncode == 0 and again.stdout.count("Using cache") == 3, again.stdout
    assert ok(engine, "images", "-q", "--no-trunc", "kept:1").strip() == first
    ok(engine, "rmi", "kept:1")
    ok(engine, "builder", "prune", "-af")


def test_fifos_reach_the_image(engine, tmp_path):
    # A fifo in the context is copied, and ADD unpacks an archive's fifos, as dockerd does.
    ctx = tmp_path / "nodes"
    ctx.mkdir()
    __import__("os").mkfifo(ctx / "ctxpipe")
    with tarfile.open(ctx / "nodes.tar", "w") as tar:
        node = tarfile.TarInfo("data/pipe")
        node.type, node.mode = tarfile.FIFOTYPE, 0o640
        tar.addfile(node)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY ctxpipe /\nADD nodes.tar /\n")
    ok(engine, "build", "-q", "--network", "none", "-t", "nodes:v1", str(ctx))
    out = ok(engine, "run", "--rm", "--network", "none", "nodes:v1", "sh", "-c",
             "[ -p /ctxpipe ] && stat -c %a /data/pipe")
    assert out == "640\n"
    ok(engine, "rmi", "nodes:v1")


def test_a_directory_whose_mtime_alone_changed_is_in_the_layer(engine, tmp_path):
    """dockerd's layers carry a directory whose only change is its mtime (a `touch -d`, an entry made and removed
    in it); they were left out, so the image pulled elsewhere showed other times than the one built here."""
    ctx = tmp_path / "mtime"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM busybox\nRUN touch -d "2000-01-01 00:00:00" /usr\n'
                                    'RUN mkdir /var/x && rmdir /var/x && touch -d "2001-01-01 00:00:00" /var\n')
    ok(engine, "build", "-q", "-t", "mtimes:1", str(ctx))
    assert ok(engine, "image", "inspect", "-f", "{{len .RootFS.Layers}}", "mtimes:1") == "3\n"
    layers = tarfile.open(fileobj=io.BytesIO(subprocess.run(
        ["docker", "save", "mtimes:1"], env=engine.env(), capture_output=True, check=True).stdout))
    times = {}
    for member in layers.getmembers():
        if member.name.endswith(".tar") or member.name.startswith("blobs/"):
            inner = layers.extractfile(member)
            if inner is not None:
                with contextlib.suppress(tarfile.ReadError):
                    times.update({m.name.rstrip("/"): m.mtime for m in tarfile.open(fileobj=inner).getmembers()})
    assert (times["usr"], times["var"]) == (946684800, 978307200)
    # A commit keeps such a directory as well.
    ok(engine, "run", "--name", "toucher", "mtimes:1", "touch", "-d", "2002-01-01 00:00:00", "/home")
    ok(engine, "commit", "toucher", "mtimes:2")
    ok(engine, "rm", "toucher")
    assert ok(engine, "run", "--rm", "mtimes:2", "stat", "-c", "%Y", "/usr", "/var", "/home") == \
        "946684800\n978307200\n1009843200\n"
    ok(engine, "rmi", "mtimes:2", "mtimes:1")
