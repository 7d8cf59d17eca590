"""Receiving a build context from an async byte stream: compressions, hostile entries, .dockerignore,
the Dockerfile's location, disconnects and bounded memory. No daemon: the store works on a temp dir."""
from __future__ import annotations

import asyncio
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from engine.backend import CONTEXTS, _fresh_dirs
from engine.builder.context import BuildContext, ContextStore
from engine.errors import InvalidArgument, NotFound

Entry = tarfile.TarInfo | tuple[str, bytes]


def _info(name: str, kind: bytes = tarfile.REGTYPE, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_600_000_000
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def make_tar(entries: Iterable[Entry], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = _info(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


async def chunked(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]
        await asyncio.sleep(0)


@pytest.fixture
def store(tmp_path: Path) -> ContextStore:
    (tmp_path / "contexts").mkdir(mode=0o700)  # as the daemon's start leaves it
    return ContextStore(tmp_path / "contexts")


def _files(ctx: BuildContext) -> list[str]:
    return sorted(str(p.relative_to(ctx.directory)) for p in ctx.directory.rglob("*"))


def _left(store: ContextStore) -> list[str]:
    return os.listdir(store.root)


DOCKERFILE = ("Dockerfile", b"FROM busybox\nCOPY . /app\n")


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
async def test_compressions_and_metadata(store: ContextStore, mode: str) -> None:
    entries: list[Entry] = [
        DOCKERFILE,
        _info("dir", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1001, mtime=1_500_000_000),
        ("dir/exec.sh", b"#!/bin/sh\n"),
        _info("dir/suid", size=0, mode=0o4755, uid=1000, gid=1000),
        _info("dir/link", tarfile.SYMTYPE, linkname="exec.sh"),
        _info("dir/abs", tarfile.SYMTYPE, linkname="/etc/passwd"),
        _info("hard", tarfile.LNKTYPE, linkname="dir/exec.sh"),
        _info("fifo", tarfile.FIFOTYPE),
    ]
    async with await store.receive(chunked(make_tar(entries, mode))) as ctx:
        assert ctx.dockerfile == DOCKERFILE[1].decode() and ctx.dockerfile_name == "Dockerfile"
        d = ctx.directory
        st = os.stat(d / "dir")
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o750, 1000, 1001, 1_500_000_000)
        st = os.stat(d / "dir" / "suid")
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o4755, 1000)
        assert os.stat(d / "dir" / "exec.sh").st_mtime == 1_600_000_000
        assert os.readlink(d / "dir" / "link") == "exec.sh"
        assert os.readlink(d / "dir" / "abs") == "/etc/passwd"  # kept as data; COPY resolves it in the context
        assert os.stat(d / "hard").st_ino == os.stat(d / "dir" / "exec.sh").st_ino
        assert stat.S_ISFIFO(os.lstat(d / "fifo").st_mode)
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert _left(store) == []


async def test_absolute_names_land_inside(store: ContextStore) -> None:
    async with await store.receive(chunked(make_tar([DOCKERFILE, ("/etc/x", b"x"), ("./a/./b", b"b")]))) as ctx:
        assert (ctx.directory / "etc" / "x").read_bytes() == b"x"
        assert (ctx.directory / "a" / "b").read_bytes() == b"b"


@pytest.mark.parametrize("entries,why", [
    ([("../evil", b"x")], "climbs out of the context"),
    ([("a/../../evil", b"x")], "climbs out of the context"),
    ([_info("out", tarfile.SYMTYPE, linkname="{outside}"), ("out/pwned", b"x")], "goes through 'out'"),
    ([_info("up", tarfile.SYMTYPE, linkname=".."), ("up/pwned", b"x")], "goes through 'up'"),
    ([("f", b"x"), ("f/pwned", b"x")], "goes through 'f'"),
    ([_info("hl", tarfile.LNKTYPE, linkname="../../etc/passwd")], "outside the context"),
    ([_info("hl", tarfile.LNKTYPE, linkname="/etc/passwd")], "not a file of this context"),
    ([_info("d", tarfile.SYMTYPE, linkname="{outside}"), _info("hl", tarfile.LNKTYPE, linkname="d/secret")],
     "goes through 'd'"),
])
async def test_hostile_entries_refused(store: ContextStore, tmp_path: Path, entries: list[Entry], why: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    for entry in entries:
        if isinstance(entry, tarfile.TarInfo):
            entry.linkname = entry.linkname.format(outside=outside)
    with pytest.raises(InvalidArgument, match=why):
        await store.receive(chunked(make_tar([DOCKERFILE, *entries])))
    assert sorted(os.listdir(outside)) == ["secret"]
    assert not (tmp_path / "evil").exists()
    assert _left(store) == []


async def test_odd_but_harmless_entries(store: ContextStore) -> None:
    entries: list[Entry] = [DOCKERFILE, ("f", b"x"), _info("f", tarfile.LNKTYPE, linkname="f"), ("d/g", b"1"),
                            ("d", b"now a file"), _info("e", tarfile.DIRTYPE), ("e", b"file over dir")]
    async with await store.receive(chunked(make_tar(entries))) as ctx:
        assert [(ctx.directory / n).read_bytes() for n in ("f", "d", "e")] == [b"x", b"now a file", b"file over dir"]


async def test_nul_in_dockerfile_parameter(store: ContextStore) -> None:
    with pytest.raises(InvalidArgument, match="NUL byte"):
        await store.receive(chunked(make_tar([DOCKERFILE])), dockerfile="Docker\0file")
    assert _left(store) == []


async def test_device_nodes_are_not_created(store: ContextStore) -> None:
    dev = _info("null", tarfile.CHRTYPE, devmajor=1, devminor=3)
    async with await store.receive(chunked(make_tar([DOCKERFILE, dev, _info("blk", tarfile.BLKTYPE)]))) as ctx:
        assert _files(ctx) == ["Dockerfile"]


IGNORE = b"*.log\nsecret/\n!secret/public.txt\nDockerfile\n.dockerignore\n"
FILES: list[Entry] = [("a.log", b"l"), ("keep.txt", b"k"), ("secret/key", b"k"), ("secret/public.txt", b"p"),
                      ("sub/b.log", b"l")]


@pytest.mark.parametrize("first", [True, False], ids=["ignore-first", "ignore-last"])
async def test_dockerignore_applied(store: ContextStore, first: bool) -> None:
    ignore = (".dockerignore", IGNORE)
    entries = [ignore, DOCKERFILE, *FILES] if first else [DOCKERFILE, *FILES, ignore]
    async with await store.receive(chunked(make_tar(entries))) as ctx:
        # The Dockerfile and .dockerignore were read, then dropped, as dockerd does when they are excluded.
        assert ctx.dockerfile == DOCKERFILE[1].decode()
        assert ctx.ignore_patterns == ["*.log", "secret", "!secret/public.txt", "Dockerfile", ".dockerignore"]
        # "*.log" is for the root only, as in Docker ("**/*.log" would reach sub/).
        assert _files(ctx) == ["keep.txt", "secret", "secret/public.txt", "sub", "sub/b.log"]


async def test_dockerfile_outside_the_context_as_the_cli_sends_it(store: ContextStore) -> None:
    # docker build -f ../Dockerfile.other . : the CLI adds the file under a random name and lists it in .dockerignore.
    name = ".dockerfile.0123456789abcdef0123"
    entries: list[Entry] = [("app.py", b"x"), (name, b"FROM scratch\n"), (".dockerignore", f"\n{name}\n".encode())]
    async with await store.receive(chunked(make_tar(entries)), dockerfile=name) as ctx:
        assert (ctx.dockerfile_name, ctx.dockerfile) == (name, "FROM scratch\n")
        assert _files(ctx) == [".dockerignore", "app.py"]


async def test_dockerfile_in_a_subdirectory_through_a_symlink(store: ContextStore) -> None:
    entries: list[Entry] = [("build/Dockerfile.dev", b"FROM a\n"), _info("b", tarfile.SYMTYPE, linkname="/build")]
    async with await store.receive(chunked(make_tar(entries)), dockerfile="b/Dockerfile.dev") as ctx:
        assert ctx.dockerfile == "FROM a\n"


async def test_lowercase_dockerfile_fallback(store: ContextStore) -> None:
    async with await store.receive(chunked(make_tar([("dockerfile", b"FROM b\n")]))) as ctx:
        assert (ctx.dockerfile_name, ctx.dockerfile) == ("dockerfile", "FROM b\n")


@pytest.mark.parametrize("entries,dockerfile,message", [
    ([("x", b"")], None, "Cannot locate specified Dockerfile: Dockerfile"),
    ([], None, "Cannot locate specified Dockerfile: Dockerfile"),
    ([("Dockerfile", b"")], None, r"the Dockerfile \(Dockerfile\) cannot be empty"),
    ([("dockerfile", b"FROM x\n")], "Other", "Cannot locate specified Dockerfile: Other"),
    ([DOCKERFILE], "../Dockerfile", "must be a file inside the build context"),
    ([DOCKERFILE, _info("l", tarfile.SYMTYPE, linkname="../../x")], "l", "forbidden path outside the build context"),
    ([_info("Dockerfile", tarfile.DIRTYPE)], None, "Cannot locate specified Dockerfile"),
])
async def test_dockerfile_errors(store: ContextStore, entries: list[Entry], dockerfile: str | None,
                                 message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await store.receive(chunked(make_tar(entries) if entries else b""), dockerfile=dockerfile)
    assert _left(store) == []


async def test_truncated_and_corrupt_streams(store: ContextStore) -> None:
    data = make_tar([DOCKERFILE, ("big", os.urandom(100_000))], "w:gz")
    with pytest.raises(InvalidArgument, match="error reading the build context"):
        await store.receive(chunked(data[: len(data) // 2]))
    with pytest.raises(InvalidArgument, match="error reading the build context"):
        await store.receive(chunked(b"\x1f\x8b\x08" + os.urandom(5000)))
    assert _left(store) == []


@pytest.mark.parametrize("compress", [False, True])
async def test_tar_ending_right_after_the_last_data(store: ContextStore, compress: bool) -> None:
    # What the docker CLI sends with -f outside the context: no padding, no end-of-archive blocks.
    import gzip
    last = _info(".dockerfile.abc", size=13)
    raw = make_tar([DOCKERFILE, ("big", b"x" * 1000)]).rstrip(b"\0") + b"\0" * (512 - 1000 % 512)
    raw += last.tobuf(tarfile.PAX_FORMAT) + b"FROM scratch\n"
    body = gzip.compress(raw) if compress else raw
    async with await store.receive(chunked(body, 100), dockerfile=".dockerfile.abc") as ctx:
        assert ctx.dockerfile == "FROM scratch\n" and (ctx.directory / "big").read_bytes() == b"x" * 1000
    # An entry cut short is still an error.
    with pytest.raises(InvalidArgument, match="unexpected end of data"):
        await store.receive(chunked(raw[:-5]), dockerfile=".dockerfile.abc")
    assert _left(store) == []


async def test_client_gone_mid_upload(store: ContextStore) -> None:
    data = make_tar([DOCKERFILE, ("big", os.urandom(1 << 20))])

    async def cut() -> AsyncIterator[bytes]:
        yield data[:300_000]
        raise ConnectionResetError("Connection lost")

    with pytest.raises(ConnectionResetError):
        await store.receive(cut())
    assert _left(store) == []


async def test_cancelled_mid_upload(store: ContextStore) -> None:
    data = make_tar([DOCKERFILE, ("big", os.urandom(1 << 20))])
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield data[:300_000]
        started.set()
        await asyncio.Event().wait()
        yield b""

    task = asyncio.create_task(store.receive(stalled()))
    await started.wait()
    assert len(_left(store)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _left(store) == []


def test_start_removes_leftovers(tmp_path: Path) -> None:
    """A daemon that died mid-build left contexts behind: the next start empties the directory, cache mounts stay."""
    root = tmp_path / "contexts"
    (root / "abc" / "x").mkdir(parents=True)
    (root / ".trash-def").mkdir()
    (tmp_path / "cache-mounts" / "id").mkdir(parents=True)
    _fresh_dirs(tmp_path, ("cache-mounts",), (CONTEXTS,))
    assert os.listdir(root) == [] and stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert os.listdir(tmp_path / "cache-mounts") == ["id"]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_large_file_streams_with_bounded_memory(store: ContextStore) -> None:
    """256 MiB through the pipeline: resident memory grows by far less (1 GiB measured the same way: see the report)."""
    size = 256 << 20
    dockerfile = _info(DOCKERFILE[0], size=len(DOCKERFILE[1]))
    block = bytes(1 << 16)
    peak = baseline = _rss()

    async def body() -> AsyncIterator[bytes]:
        nonlocal peak
        yield dockerfile.tobuf(tarfile.PAX_FORMAT) + DOCKERFILE[1].ljust(512, b"\0")
        yield _info("huge", size=size).tobuf(tarfile.PAX_FORMAT)
        for i in range(size // len(block)):
            yield block
            if i % 256 == 0:
                peak = max(peak, _rss())
        yield bytes(1024)

    async with await store.receive(body()) as ctx:
        assert (ctx.directory / "huge").stat().st_size == size
    assert peak - baseline < 64 << 20


@pytest.fixture
async def web_server() -> AsyncIterator[str]:
    """A local HTTP server for `remote`: /<name> answers what ROUTES says."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    async def handler(request: web.Request) -> web.Response:
        status, content_type, body = ROUTES[request.match_info["name"]]
        resp = web.Response(status=status, body=body)
        if content_type is None:
            del resp.headers["Content-Type"]  # aiohttp would otherwise say application/octet-stream
        else:
            resp.content_type = content_type
        return resp

    app = web.Application()
    app.router.add_get("/{name}", handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("/"))
    finally:
        await server.close()


ROUTES: dict[str, tuple[int, str | None, bytes]] = {
    "Dockerfile": (200, "text/plain", b"FROM busybox\nRUN true\n"),
    "sniffed": (200, "application/octet-stream", b"FROM busybox\n"),
    "ctx.tar.gz": (200, "application/octet-stream", make_tar([DOCKERFILE, ("a", b"a")], "w:gz")),
    "ctx.tar": (200, "application/x-tar", make_tar([("sub/Dockerfile", b"FROM x\n")])),
    "page": (200, "text/html", b"<html></html>"),
    "missing": (404, "text/plain", b"no such thing\n"),
    "empty": (200, "application/x-tar", b""),
}


async def test_remote_dockerfile_alone(store: ContextStore, web_server: str) -> None:
    for name, text in (("Dockerfile", "FROM busybox\nRUN true\n"), ("sniffed", "FROM busybox\n")):
        async with await store.receive(chunked(b"ignored"), remote=web_server + name) as ctx:
            assert ctx.dockerfile == text and _files(ctx) == []


async def test_remote_tarballs(store: ContextStore, web_server: str) -> None:
    async with await store.receive(chunked(b""), remote=web_server + "ctx.tar.gz") as ctx:
        assert ctx.dockerfile == DOCKERFILE[1].decode() and _files(ctx) == ["Dockerfile", "a"]
    async with await store.receive(chunked(b""), remote=web_server + "ctx.tar", dockerfile="sub/Dockerfile") as ctx:
        assert ctx.dockerfile == "FROM x\n"


@pytest.mark.parametrize("name,error,message", [
    ("page", InvalidArgument, "unsupported Content-Type 'text/html"),
    ("missing", NotFound, r"failed to GET .*/missing with status 404 Not Found: no such thing$"),
    ("empty", InvalidArgument, "empty response"),
])
async def test_remote_refusals(store: ContextStore, web_server: str, name: str, error: type[Exception],
                               message: str) -> None:
    with pytest.raises(error, match=message):
        await store.receive(chunked(b""), remote=web_server + name)
    assert _left(store) == []


@pytest.mark.parametrize("remote,message", [
    ("ftp://example.com/ctx.tar", r"remoteURL \(ftp://example.com/ctx.tar\) could not be recognized as URL"),
    ("client-session", "no longer supported"),
])
async def test_remote_not_fetched(store: ContextStore, remote: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await store.receive(chunked(b""), remote=remote)
    assert _left(store) == []


@pytest.fixture
async def git_server(tmp_path: Path) -> AsyncIterator[str]:
    """A bare repository over git's "dumb" http (static files): branch main, a Dockerfile under sub/."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    work, bare = tmp_path / "work", tmp_path / "www" / "repo.git"
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "Dockerfile").write_text("FROM busybox\nCOPY a /a\n")
    (work / "sub" / "a").write_text("from git\n")
    (work / "sub" / "out").symlink_to("/etc/passwd")
    (work / "top").write_text("top\n")
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path), "PATH": os.environ["PATH"],
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], env=env, check=True, capture_output=True)
    subprocess.run(["git", "update-server-info"], cwd=bare, env=env, check=True, capture_output=True)
    app = web.Application()
    app.router.add_static("/", tmp_path / "www")
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("/repo.git"))
    finally:
        await server.close()


async def test_a_git_remote_is_fetched_and_its_directory_is_the_context(store: ContextStore, git_server: str) -> None:
    async with await store.receive(chunked(b""), remote=git_server + "#main:sub") as ctx:
        assert ctx.dockerfile == "FROM busybox\nCOPY a /a\n"
        assert _files(ctx) == ["Dockerfile", "a", "out"]
        # A link in the repository stays a link: nothing of the host comes into the context.
        assert os.readlink(ctx.directory / "out") == "/etc/passwd"
    async with await store.receive(chunked(b""), remote=git_server, dockerfile="sub/Dockerfile") as ctx:
        assert "top" in _files(ctx) and ".git" in _files(ctx)
    assert _left(store) == []


@pytest.mark.parametrize("fragment,message", [
    ("#nosuch", "error fetching: "),
    ("#main:../..", "outside the repository"),
    ("#main:missing", "not a directory of the repository"),
    ("#-x", "not a git URL"),
])
async def test_git_remote_refusals(store: ContextStore, git_server: str, fragment: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await store.receive(chunked(b""), remote=git_server + fragment)
    assert _left(store) == []


async def test_from_an_aiohttp_request_and_a_client_that_hangs_up(store: ContextStore) -> None:
    from aiohttp import ClientSession, web
    from aiohttp.test_utils import TestServer

    outcomes: asyncio.Queue[str | BaseException] = asyncio.Queue()

    async def build(request: web.Request) -> web.Response:
        try:
            async with await store.from_request(request) as ctx:
                await outcomes.put(ctx.dockerfile)
                return web.Response(text=",".join(_files(ctx)))
        except BaseException as e:
            await outcomes.put(e)
            raise

    app = web.Application()
    app.router.add_post("/build", build)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        data = make_tar([("sub/Dockerfile.dev", b"FROM y\n"), ("big", os.urandom(1 << 20))], "w:gz")
        async with ClientSession() as session:
            async with session.post(server.make_url("/build?dockerfile=sub%2FDockerfile.dev"),
                                    data=chunked(data, 65536)) as resp:
                assert (resp.status, await resp.text()) == (200, "big,sub,sub/Dockerfile.dev")
        assert await outcomes.get() == "FROM y\n"

        # A client that sends part of a chunked body, then closes its connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        part = data[:200_000]
        writer.write(b"POST /build HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + f"{len(part):x}\r\n".encode() + part + b"\r\n")
        await writer.drain()
        writer.close()
        assert isinstance(await outcomes.get(), BaseException)  # cancelled, or a payload error: both clean up
        assert _left(store) == []
    finally:
        await server.close()


async def test_hashes_taken_while_unpacking_give_the_keys_read_from_disk(store: ContextStore) -> None:
    entries: list[Entry] = [
        DOCKERFILE,
        ("src/a.bin", os.urandom(70_000)),
        ("src/b.txt", b"first"),
        ("src/b.txt", b"again"),  # written twice: the key must be the last one's
        _info("src/hard", tarfile.LNKTYPE, linkname="src/a.bin"),
        ("top.txt", b"top"),
    ]
    async with await store.receive(chunked(make_tar(entries))) as ctx:
        known = dict(ctx._memo)
        assert hashlib.sha256(entries[1][1]).hexdigest() in known.values()  # type: ignore[index]
        sources = await ctx.resolve(["src/", "top.txt"])
        from_upload = await ctx.checksum(sources)
        assert ctx._memo == known, "every file's hash came from the upload: none was read again"
        ctx._memo.clear()
        assert await ctx.checksum(sources) == from_upload
        assert (ctx.directory / "src/b.txt").read_bytes() == b"again"
