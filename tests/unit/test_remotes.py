"""Registry client tests against small in-process aiohttp servers on 127.0.0.1."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from yarl import URL

from runtime.errors import (
    DataLoss,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from runtime.oci import MT_DOCKER_MANIFEST, MT_OCI_INDEX, MT_OCI_MANIFEST, Descriptor
from runtime.reference import parse
from runtime.remotes.auth import (
    Authorizer,
    Challenge,
    Credentials,
    DockerConfigFile,
    parse_docker_config,
    parse_www_authenticate,
)
from runtime.remotes.hosts import RegistryHostsConfig
from runtime.remotes.platforms import host_platform, normalize, select_manifest
from runtime.remotes.resolver import MAX_MANIFEST_SIZE, Resolver
from runtime.remotes.transport import RetryPolicy, parse_retry_after, proxy_for

FAST = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "message": message}]}, status=status)


MANIFEST = json.dumps({
    "schemaVersion": 2,
    "mediaType": MT_OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64, "size": 2},
    "layers": [],
}).encode()
BLOB = bytes(range(256)) * 40


class FakeRegistry:
    """A minimal registry: one repository `library/busybox`, tag `latest`, one blob.

    `before` runs first on every request and may answer instead (to inject
    failures); `auth` guards /v2/ with a check that may answer 401.
    """

    def __init__(self) -> None:
        self.manifests: dict[str, tuple[bytes, str]] = {"latest": (MANIFEST, MT_OCI_MANIFEST)}
        self.manifests[sha(MANIFEST)] = self.manifests["latest"]
        self.blobs: dict[str, bytes] = {sha(BLOB): BLOB}
        self.head_digest = True
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.before: Callable[[web.Request], web.StreamResponse | None] | None = None
        self.auth: Callable[[web.Request], web.StreamResponse | None] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/v2/{name:.+}/manifests/{ref}", self.manifest)
        app.router.add_route("*", "/v2/{name:.+}/blobs/{digest}", self.blob)
        app.router.add_route("GET", "/v2/{name:.+}/tags/list", self.tags)
        return app

    def _gate(self, request: web.Request) -> web.StreamResponse | None:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        for hook in (self.before, self.auth):
            if hook is not None and (answer := hook(request)) is not None:
                return answer
        return None

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        if (answer := self._gate(request)) is not None:
            return answer
        found = self.manifests.get(request.match_info["ref"])
        if request.match_info["name"] == "library/unknown" and request.method == "GET":
            return registry_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if request.match_info["name"] != "library/busybox" or found is None:
            return registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        body, media_type = found
        headers = {"Content-Type": media_type}
        if self.head_digest or request.method == "GET":
            headers["Docker-Content-Digest"] = sha(body)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(body=body, headers=headers)

    async def tags(self, request: web.Request) -> web.StreamResponse:
        if (answer := self._gate(request)) is not None:
            return answer
        if request.match_info["name"] != "library/busybox":
            return registry_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        return web.json_response({"name": "library/busybox", "tags": ["latest"]})

    async def blob(self, request: web.Request) -> web.StreamResponse:
        if (answer := self._gate(request)) is not None:
            return answer
        data = self.blobs.get(request.match_info["digest"])
        if data is None:
            return registry_error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        # aiohttp's FileResponse-style range support is not used by web.Response,
        # so the range is served by hand.
        rng = request.headers.get("Range")
        if rng:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            return web.Response(
                status=206, body=data[start:],
                headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
            )
        return web.Response(body=data)


@pytest.fixture
async def serve():
    """start(app) -> "127.0.0.1:<port>"; servers are torn down after the test."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def no_docker_config(tmp_path, monkeypatch):
    # Never read the developer's real ~/.docker/config.json.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))


@pytest.fixture
async def make_resolver(no_docker_config):
    made: list[Resolver] = []

    def make(config: RegistryHostsConfig | None = None, **kwargs) -> Resolver:
        kwargs.setdefault("retry", FAST)
        resolver = Resolver(config or RegistryHostsConfig(), **kwargs)
        made.append(resolver)
        return resolver

    yield make
    for resolver in made:
        await resolver.close()


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- hosts -------------------------------------------------------------------


def test_endpoints_schemes_and_order():
    config = RegistryHostsConfig(
        mirrors={
            "index.docker.io": ["mirror.example.com", "http://10.1.1.1:5000/", "https://m2.example.com/v2"],
            "quay.io": ["127.0.0.1:5001"],
        },
        insecure=["insecure.example.com:5000", "10.0.0.0/8"],
    )
    hub = config.endpoints_for("docker.io")
    assert [(e.base_url, e.is_mirror) for e in hub] == [
        ("https://mirror.example.com", True),
        ("http://10.1.1.1:5000", True),
        ("https://m2.example.com", True),
        ("https://registry-1.docker.io", False),
    ]
    assert hub[0].url("library/busybox/manifests/latest") == (
        "https://mirror.example.com/v2/library/busybox/manifests/latest"
    )
    quay = config.endpoints_for("quay.io")
    assert [(e.base_url, e.is_mirror) for e in quay] == [
        ("http://127.0.0.1:5001", True), ("https://quay.io", False)
    ]
    assert config.endpoints_for("localhost:5000")[0].base_url == "http://localhost:5000"
    assert config.endpoints_for("127.9.9.9")[0].base_url == "http://127.9.9.9"
    assert config.endpoints_for("[::1]:5000")[0].base_url == "http://[::1]:5000"
    assert config.endpoints_for("insecure.example.com:5000")[0].base_url == "http://insecure.example.com:5000"
    assert config.endpoints_for("insecure.example.com:5001")[0].base_url == "https://insecure.example.com:5001"
    assert config.endpoints_for("10.2.3.4:443")[0].base_url == "http://10.2.3.4:443"
    assert [e.base_url for e in config.endpoints_for("ghcr.io")] == ["https://ghcr.io"]
    assert RegistryHostsConfig(plain_http=True).endpoints_for("ghcr.io")[0].base_url == "http://ghcr.io"


def test_bad_mirror_rejected_at_config_time():
    with pytest.raises(InvalidArgument, match="scheme must be http or https"):
        RegistryHostsConfig(mirrors={"docker.io": ["ftp://mirror"]})


# --- auth parsing ------------------------------------------------------------


def test_www_authenticate_parsing():
    [bearer] = parse_www_authenticate(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:a/b:pull,push"'
    )
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:a/b:pull,push",  # the comma inside quotes is part of the value
    }

    basic, other = parse_www_authenticate(['Basic realm="Registry Realm"', 'Bearer realm=x, error="a \\"q\\", b"'])
    assert (basic.scheme, basic.params) == ("basic", {"realm": "Registry Realm"})
    assert other.params == {"realm": "x", "error": 'a "q", b'}

    first, second = parse_www_authenticate('Basic realm="r1", Bearer realm="r2", service=s')
    assert (first.scheme, first.params) == ("basic", {"realm": "r1"})
    assert (second.scheme, second.params) == ("bearer", {"realm": "r2", "service": "s"})

    assert parse_www_authenticate("") == []
    assert [c.scheme for c in parse_www_authenticate('Negotiate abc==, "=,=')] == ["negotiate"]


def test_docker_config_parsing(tmp_path, monkeypatch):
    data = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hubuser:hub:pass").decode()},
            "127.0.0.1:5000": {"username": "u", "password": "p"},
            "https://ghcr.io": {"identitytoken": "refresh-me"},
            "helper-only.example.com": {},
        },
        "credsStore": "desktop",
    }
    creds = parse_docker_config(data)
    assert creds["docker.io"] == Credentials(username="hubuser", password="hub:pass")
    assert creds["127.0.0.1:5000"] == Credentials(username="u", password="p")
    assert creds["ghcr.io"].identity_token == "refresh-me"
    assert "helper-only.example.com" not in creds
    with pytest.raises(InvalidArgument, match="base64"):
        parse_docker_config({"auths": {"x": {"auth": "***"}}})

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    provider = DockerConfigFile()
    assert provider.get("docker.io") is None  # no file yet
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert provider.get("index.docker.io").username == "hubuser"
    assert provider.get("https://127.0.0.1:5000/v2/").password == "p"
    # A later `docker login` is picked up without restarting.
    data["auths"]["127.0.0.1:5000"] = {"username": "u2", "password": "p2"}
    (tmp_path / "config.json").write_text(json.dumps(data) + " ")
    assert provider.get("127.0.0.1:5000").username == "u2"
    assert "p2" not in repr(provider.get("127.0.0.1:5000"))


def test_retry_after_and_proxy(monkeypatch):
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None

    for name in ("HTTP_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example.com")
    assert proxy_for(URL("https://registry-1.docker.io/v2/")) == "http://proxy.example.com:3128"
    assert proxy_for(URL("https://internal.example.com/v2/")) is None
    assert proxy_for(URL("https://127.0.0.1:5000/v2/")) is None
    assert proxy_for(URL("https://localhost:5000/v2/")) is None
    assert proxy_for(URL("http://registry-1.docker.io/v2/")) is None  # only HTTPS_PROXY is set


# --- resolve / fetch -----------------------------------------------------------


async def test_resolve_by_head_and_fetch(serve, make_resolver):
    reg = FakeRegistry()
    host = await serve(reg.app())
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")

    endpoint, desc = await resolver.resolve(ref)
    assert endpoint.base_url == f"http://{host}" and not endpoint.is_mirror
    assert desc == Descriptor(mediaType=MT_OCI_MANIFEST, digest=sha(MANIFEST), size=len(MANIFEST))
    assert [m for m, _, _ in reg.requests] == ["HEAD"]
    accept = reg.requests[0][2]["Accept"]
    assert MT_OCI_INDEX in accept and MT_DOCKER_MANIFEST in accept

    assert await resolver.fetch_manifest(endpoint, ref, desc.digest) == MANIFEST


async def test_resolve_falls_back_to_get_and_hashes(serve, make_resolver):
    reg = FakeRegistry()
    reg.head_digest = False
    host = await serve(reg.app())
    _, desc = await make_resolver().resolve(parse(f"{host}/library/busybox:latest"))
    assert desc.digest == sha(MANIFEST) and desc.size == len(MANIFEST)
    assert [m for m, _, _ in reg.requests] == ["HEAD", "GET"]


@pytest.mark.parametrize("head_digest", [True, False])
async def test_resolve_by_digest_verifies(serve, make_resolver, head_digest):
    reg = FakeRegistry()
    reg.head_digest = head_digest
    wrong = sha(b"something else")
    reg.manifests[wrong] = (MANIFEST, MT_OCI_MANIFEST)
    host = await serve(reg.app())
    resolver = make_resolver()

    _, desc = await resolver.resolve(parse(f"{host}/library/busybox@{sha(MANIFEST)}"))
    assert desc.digest == sha(MANIFEST)
    ref = parse(f"{host}/library/busybox@{wrong}")
    if head_digest:
        # The registry's own digest header already contradicts the reference.
        with pytest.raises(DataLoss):
            await resolver.resolve(ref)
    else:
        # HEAD cannot be checked; fetching the content is where it is caught.
        endpoint, desc = await resolver.resolve(ref)
        assert desc.digest == wrong
        with pytest.raises(DataLoss):
            await resolver.fetch_manifest(endpoint, ref, desc.digest)


async def test_manifest_not_found_uses_registry_message(serve, make_resolver):
    host = await serve(FakeRegistry().app())
    resolver = make_resolver()
    with pytest.raises(NotFound, match="manifest unknown"):
        await resolver.resolve(parse(f"{host}/library/busybox:nope"))
    # What the registry says of a repository it never had, which a HEAD's bodiless 404 cannot tell: a GET does.
    with pytest.raises(NotFound, match="manifest unknown"):
        await resolver.resolve(parse(f"{host}/library/nosuchimage"))
    with pytest.raises(NotFound, match="name unknown: repository name not known to registry"):
        await resolver.resolve(parse(f"{host}/library/unknown"))
    endpoint = resolver.endpoints(parse(f"{host}/library/busybox"))[0]
    with pytest.raises(NotFound, match="manifest unknown") as info:
        await resolver.fetch_manifest(endpoint, parse(f"{host}/library/busybox"), sha(b"x"))
    assert host in info.value.message


async def test_fetch_manifest_digest_mismatch(serve, make_resolver):
    reg = FakeRegistry()
    claimed = sha(b"claimed")
    reg.manifests[claimed] = (MANIFEST, MT_OCI_MANIFEST)
    host = await serve(reg.app())
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")
    with pytest.raises(DataLoss, match=sha(MANIFEST)):
        await resolver.fetch_manifest(resolver.endpoints(ref)[0], ref, claimed)


@pytest.mark.parametrize("chunked", [False, True])
async def test_manifest_too_large(serve, make_resolver, chunked):
    big = b" " * (MAX_MANIFEST_SIZE + 1)

    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=big, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": MT_OCI_MANIFEST})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(big), 65536):
            await resp.write(big[i:i + 65536])
        return resp

    app = web.Application()
    app.router.add_get("/v2/{name:.+}/manifests/{ref}", handler)
    host = await serve(app)
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")
    with pytest.raises(InvalidArgument, match="manifest too large"):
        await resolver.fetch_manifest(resolver.endpoints(ref)[0], ref, sha(big))


async def test_html_instead_of_manifest_rejected(serve, make_resolver):
    reg = FakeRegistry()
    reg.before = lambda r: web.Response(text="<html>login</html>", content_type="text/html")
    host = await serve(reg.app())
    with pytest.raises(InvalidArgument, match="text/html"):
        await make_resolver().resolve(parse(f"{host}/library/busybox"))


# --- auth flows ----------------------------------------------------------------


def bearer_guard(realm: str, tokens: set[str]) -> Callable[[web.Request], web.Response | None]:
    def guard(request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization", "").removeprefix("Bearer ") in tokens:
            return None
        name = request.match_info["name"]
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            status=401,
            headers={"WWW-Authenticate":
                     f'Bearer realm="{realm}",service="test-registry",scope="repository:{name}:pull"'},
        )
    return guard


def token_server(expected: Credentials | None, log: list[web.Request], token: str = "tok-1"):
    async def handler(request: web.Request) -> web.Response:
        log.append(request)
        if expected is not None:
            want = "Basic " + base64.b64encode(f"{expected.username}:{expected.password}".encode()).decode()
            if request.headers.get("Authorization") != want:
                return web.json_response({"details": "incorrect username or password"}, status=401)
        return web.json_response({"token": token, "expires_in": 300})

    app = web.Application()
    app.router.add_get("/token", handler)
    return app


async def test_bearer_flow_with_basic_credentials(serve, make_resolver):
    creds = Credentials(username="alice", password="s3cret")
    token_log: list[web.Request] = []
    auth_host = await serve(token_server(creds, token_log))
    reg = FakeRegistry()
    reg.auth = bearer_guard(f"http://{auth_host}/token", {"tok-1"})
    host = await serve(reg.app())
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")

    endpoint, desc = await resolver.resolve(ref, credentials=creds)
    assert token_log[0].query["service"] == "test-registry"
    assert token_log[0].query.getall("scope") == ["repository:library/busybox:pull"]
    assert token_log[0].query["account"] == "alice"

    # The challenge and token are remembered: no more 401s, no more token requests.
    await resolver.fetch_manifest(endpoint, ref, desc.digest, credentials=creds)
    stream = await resolver.fetch_blob(endpoint, ref, Descriptor(mediaType="x", digest=sha(BLOB), size=len(BLOB)),
                                       credentials=creds)
    assert b"".join([c async for c in stream]) == BLOB
    assert len(token_log) == 1
    assert [r[2].get("Authorization") for r in reg.requests] == [None] + ["Bearer tok-1"] * 3


async def test_bearer_anonymous(serve, make_resolver):
    token_log: list[web.Request] = []
    auth_host = await serve(token_server(None, token_log))
    reg = FakeRegistry()
    reg.auth = bearer_guard(f"http://{auth_host}/token", {"tok-1"})
    host = await serve(reg.app())
    _, desc = await make_resolver().resolve(parse(f"{host}/library/busybox"))
    assert desc.digest == sha(MANIFEST)
    assert "Authorization" not in token_log[0].headers


async def test_token_server_refuses(serve, make_resolver):
    auth_host = await serve(token_server(Credentials(username="alice", password="right"), []))
    reg = FakeRegistry()
    reg.auth = bearer_guard(f"http://{auth_host}/token", {"tok-1"})
    host = await serve(reg.app())
    with pytest.raises(Unauthenticated) as info:
        await make_resolver().resolve(parse(f"{host}/library/busybox"),
                                      credentials=Credentials(username="alice", password="wrong"))
    assert info.value.message.startswith(f"authentication failed for {host}")
    assert "incorrect username or password" in info.value.message


def basic_guard(user: str, password: str):
    want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def guard(request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") == want:
            return None
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="Registry Realm"'},
        )
    return guard


async def test_basic_flow(serve, make_resolver):
    reg = FakeRegistry()
    reg.auth = basic_guard("bob", "pw")
    host = await serve(reg.app())
    resolver = make_resolver()
    _, desc = await resolver.resolve(parse(f"{host}/library/busybox"), Credentials(username="bob", password="pw"))
    assert desc.digest == sha(MANIFEST)
    assert reg.requests[-1][2]["Authorization"].startswith("Basic ")

    with pytest.raises(Unauthenticated, match="no credentials"):
        await make_resolver().resolve(parse(f"{host}/library/busybox"))


async def test_basic_wrong_password(serve, make_resolver):
    reg = FakeRegistry()
    reg.auth = basic_guard("bob", "pw")
    host = await serve(reg.app())
    with pytest.raises(Unauthenticated) as info:
        await make_resolver().resolve(parse(f"{host}/library/busybox"), Credentials(username="bob", password="nope"))
    assert info.value.message == f"authentication failed for {host}: unauthorized: authentication required"
    # Challenge, one attempt, and a GET for the error text HEAD cannot carry; no hammering.
    assert [m for m, _, _ in reg.requests] == ["HEAD", "HEAD", "GET"]


async def test_credentials_from_docker_config(serve, make_resolver, tmp_path):
    reg = FakeRegistry()
    reg.auth = basic_guard("bob", "pw")
    host = await serve(reg.app())
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {f"https://{host}": {"auth": base64.b64encode(b"bob:pw").decode()}}}))
    resolver = make_resolver(RegistryHostsConfig(docker_config=str(path)))
    _, desc = await resolver.resolve(parse(f"{host}/library/busybox"))
    assert desc.digest == sha(MANIFEST)
    # Per-request credentials win over the file.
    with pytest.raises(Unauthenticated):
        await resolver.resolve(parse(f"{host}/library/busybox:latest"), Credentials(username="bob", password="x"))


async def test_forbidden(serve, make_resolver):
    reg = FakeRegistry()
    reg.before = lambda r: registry_error(403, "DENIED", "requested access to the resource is denied")
    host = await serve(reg.app())
    with pytest.raises(PermissionDenied, match="requested access to the resource is denied"):
        await make_resolver().resolve(parse(f"{host}/library/busybox"))


# --- retries -------------------------------------------------------------------


def fail_first(n: int, response: Callable[[], web.Response]):
    seen = {"count": 0}

    def hook(request: web.Request) -> web.Response | None:
        seen["count"] += 1
        return response() if seen["count"] <= n else None
    return hook


async def test_429_honours_retry_after(serve, make_resolver):
    reg = FakeRegistry()
    reg.before = fail_first(1, lambda: web.Response(status=429, headers={"Retry-After": "1"}))
    host = await serve(reg.app())
    started = time.monotonic()
    _, desc = await make_resolver().resolve(parse(f"{host}/library/busybox"))
    assert time.monotonic() - started >= 0.95
    assert desc.digest == sha(MANIFEST)
    assert len(reg.requests) == 2


async def test_503_retried_then_gives_up(serve, make_resolver):
    reg = FakeRegistry()
    reg.before = fail_first(3, lambda: web.Response(status=503))
    host = await serve(reg.app())
    _, desc = await make_resolver().resolve(parse(f"{host}/library/busybox"))
    assert desc.digest == sha(MANIFEST) and len(reg.requests) == 4

    reg.requests.clear()
    reg.before = lambda r: registry_error(503, "UNAVAILABLE", "try later")
    with pytest.raises(Unavailable, match="503"):
        await make_resolver().resolve(parse(f"{host}/library/busybox"))
    assert len(reg.requests) == FAST.attempts


async def test_connection_refused_origin(make_resolver):
    port = refused_port()
    with pytest.raises(Unavailable) as failed:
        await make_resolver().resolve(parse(f"127.0.0.1:{port}/library/busybox"))
    # Go's words, as dockerd passes them on.
    assert failed.value.message.endswith(f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    assert failed.value.message.startswith('Head "http://127.0.0.1:')


async def test_an_unknown_registry_host_is_no_such_host(make_resolver):
    with pytest.raises(Unavailable, match=r'dial tcp: lookup nosuch\.invalid: no such host$'):
        await make_resolver().resolve(parse("nosuch.invalid/library/busybox"))


# --- mirrors -------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["404", "refused", "500"])
async def test_mirror_failure_falls_back_to_origin(serve, make_resolver, failure):
    origin = FakeRegistry()
    origin_host = await serve(origin.app())
    mirror = FakeRegistry()
    mirror.manifests.clear()
    if failure == "500":
        mirror.before = lambda r: web.Response(status=500)
    mirror_host = f"127.0.0.1:{refused_port()}" if failure == "refused" else await serve(mirror.app())

    config = RegistryHostsConfig(mirrors={origin_host: [f"http://{mirror_host}"]})
    endpoint, desc = await make_resolver(config).resolve(parse(f"{origin_host}/library/busybox"))
    assert endpoint.base_url == f"http://{origin_host}" and not endpoint.is_mirror
    assert desc.digest == sha(MANIFEST)
    if failure != "refused":
        assert mirror.requests  # the mirror really was asked first


async def test_mirror_used_when_it_has_the_image(serve, make_resolver):
    mirror = FakeRegistry()
    mirror_host = await serve(mirror.app())
    config = RegistryHostsConfig(mirrors={"docker.io": [mirror_host]})
    endpoint, _ = await make_resolver(config).resolve(parse("busybox"))
    assert endpoint.is_mirror and endpoint.base_url == f"http://{mirror_host}"
    assert mirror.requests[0][1] == "/v2/library/busybox/manifests/latest"


# --- blobs ---------------------------------------------------------------------


BLOB_DESC = Descriptor(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", digest=sha(BLOB), size=len(BLOB))


async def test_blob_range_resume(serve, make_resolver):
    reg = FakeRegistry()
    host = await serve(reg.app())
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")
    endpoint = resolver.endpoints(ref)[0]

    async with await resolver.fetch_blob(endpoint, ref, BLOB_DESC, offset=1000) as stream:
        assert stream.start_offset == 1000 and stream.length == len(BLOB) - 1000
        assert b"".join([c async for c in stream]) == BLOB[1000:]
    assert reg.requests[-1][2]["Range"] == "bytes=1000-"

    empty = await resolver.fetch_blob(endpoint, ref, BLOB_DESC, offset=len(BLOB))
    assert [c async for c in empty] == []


async def test_blob_range_ignored_signals_restart(serve, make_resolver):
    reg = FakeRegistry()
    reg.before = lambda r: web.Response(body=BLOB) if "/blobs/" in r.path else None
    host = await serve(reg.app())
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")
    stream = await resolver.fetch_blob(resolver.endpoints(ref)[0], ref, BLOB_DESC, offset=1000)
    assert stream.start_offset == 0
    assert b"".join([c async for c in stream]) == BLOB


async def test_blob_not_found_and_size_mismatch(serve, make_resolver):
    host = await serve(FakeRegistry().app())
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")
    endpoint = resolver.endpoints(ref)[0]
    missing = Descriptor(mediaType="x", digest=sha(b"missing"), size=7)
    with pytest.raises(NotFound, match="blob unknown"):
        await resolver.fetch_blob(endpoint, ref, missing)
    with pytest.raises(DataLoss, match="bytes"):
        await resolver.fetch_blob(endpoint, ref, BLOB_DESC.model_copy(update={"size": len(BLOB) + 1}))


async def test_blob_redirect_to_storage_drops_credentials(serve, make_resolver):
    storage_seen: list[dict[str, str]] = []

    async def storage(request: web.Request) -> web.Response:
        storage_seen.append(dict(request.headers))
        return web.Response(body=BLOB)

    storage_app = web.Application()
    storage_app.router.add_get("/bucket/{key}", storage)
    storage_host = await serve(storage_app)

    reg = FakeRegistry()
    reg.auth = basic_guard("bob", "pw")
    reg.before = lambda r: (
        web.Response(status=307, headers={"Location": f"http://{storage_host}/bucket/k?sig=a%2Fb"})
        if "/blobs/" in r.path and r.headers.get("Authorization") else None
    )
    host = await serve(reg.app())
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")
    stream = await resolver.fetch_blob(
        resolver.endpoints(ref)[0], ref, BLOB_DESC, credentials=Credentials(username="bob", password="pw")
    )
    assert b"".join([c async for c in stream]) == BLOB
    assert "Authorization" not in storage_seen[0]


async def test_redirect_loop_is_a_clear_error(serve, make_resolver):
    async def bounce(request: web.Request) -> web.Response:
        target = "/b" if request.path.endswith("/a") or "/blobs/" in request.path else "/a"
        return web.Response(status=302, headers={"Location": target})

    app = web.Application()
    app.router.add_get("/{tail:.*}", bounce)
    host = await serve(app)
    resolver = make_resolver()
    ref = parse(f"{host}/library/busybox")
    with pytest.raises(Unavailable, match="redirect loop"):
        await resolver.fetch_blob(resolver.endpoints(ref)[0], ref, BLOB_DESC)


# --- platforms -----------------------------------------------------------------


def entry(arch: str, variant: str | None = None, os: str = "linux", n: int = 0, **extra) -> dict:
    platform = {"architecture": arch, "os": os}
    if variant:
        platform["variant"] = variant
    return {"mediaType": MT_OCI_MANIFEST, "digest": "sha256:" + f"{n:x}" * 64, "size": 100 + n,
            "platform": platform, **extra}


INDEX = {
    "schemaVersion": 2,
    "mediaType": MT_OCI_INDEX,
    "manifests": [
        entry("amd64", n=1),
        entry("arm", "v6", n=2),
        entry("arm", "v7", n=3),
        entry("arm64", "v8", n=4),
        entry("amd64", "v3", n=5),
        entry("unknown", os="unknown", n=6,
              annotations={"vnd.docker.reference.type": "attestation-manifest"}),
        entry("amd64", os="windows", n=7),
    ],
}


def test_select_manifest_platforms():
    assert select_manifest(INDEX, arch="amd64").size == 101  # v1 host never gets the v3 build
    assert select_manifest(INDEX, arch="x86_64").size == 101
    assert select_manifest(INDEX, arch="amd64", variant="v3").size == 105
    assert select_manifest(INDEX, arch="aarch64").size == 104
    assert select_manifest(INDEX, arch="arm64", variant="v8").size == 104
    assert select_manifest(INDEX, arch="armv7l").size == 103
    assert select_manifest(INDEX, arch="arm").size == 103  # arm means arm/v7
    assert select_manifest(INDEX, arch="arm", variant="v6").size == 102
    assert select_manifest(INDEX, os="windows", arch="amd64").size == 107
    # An arm/v8 (32-bit) host runs the v7 image over the v6 one.
    assert select_manifest(INDEX, arch="armv8l").size == 103
    host = host_platform()
    assert select_manifest(
        {"manifests": [entry(host.architecture, host.variant, n=9)]}
    ).size == 109


def test_select_manifest_not_found_in_dockerds_words(caplog):
    with pytest.raises(NotFound) as info, caplog.at_level("INFO", "runtime.remotes"):
        select_manifest(INDEX, arch="s390x")
    assert info.value.message == "no matching manifest for linux/s390x in the manifest list entries"
    assert ("an index offering linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64, linux/amd64/v3, "
            "windows/amd64") in caplog.text
    with pytest.raises(NotFound, match="linux/arm/v5"):
        select_manifest(INDEX, arch="arm", variant="v5")
    with pytest.raises(InvalidArgument):
        select_manifest({"layers": []}, arch="amd64")


def test_normalize():
    assert normalize("Linux", "aarch64") == ("linux", "arm64", "")
    assert normalize("linux", "armv6l") == ("linux", "arm", "v6")
    assert normalize("linux", "arm", "7") == ("linux", "arm", "v7")
    assert normalize("linux", "amd64", "v1") == ("linux", "amd64", "")


# --- more auth and transport edges ------------------------------------------------


async def test_identity_token_uses_oauth_refresh_grant(serve, make_resolver):
    forms: list[dict[str, str]] = []

    async def oauth(request: web.Request) -> web.Response:
        forms.append(dict(await request.post()))
        return web.json_response({"access_token": "tok-1", "expires_in": 300})

    token_app = web.Application()
    token_app.router.add_post("/token", oauth)
    auth_host = await serve(token_app)
    reg = FakeRegistry()
    reg.auth = bearer_guard(f"http://{auth_host}/token", {"tok-1"})
    host = await serve(reg.app())
    await make_resolver().resolve(parse(f"{host}/library/busybox"), Credentials(identity_token="refresh-me"))
    assert forms[0]["grant_type"] == "refresh_token"
    assert forms[0]["refresh_token"] == "refresh-me"
    assert forms[0]["service"] == "test-registry"
    assert forms[0]["scope"] == "repository:library/busybox:pull"


async def test_bearer_token_cache_expires():
    now = [1000.0]
    calls: list[str] = []

    async def http(method, url, headers, body):
        calls.append(url)
        return 200, json.dumps({"token": f"t{len(calls)}", "expires_in": 60}).encode()

    auth = Authorizer(http, clock=lambda: now[0])
    assert await auth.authorization("reg", "repository:a:pull", None) is None  # nothing learned yet
    auth.learn("reg", [Challenge("bearer", {"realm": "http://auth.example/token", "service": "svc"})])
    assert await auth.authorization("reg", "repository:a:pull", None) == "Bearer t1"
    assert await auth.authorization("reg", "repository:a:pull", None) == "Bearer t1"
    assert await auth.authorization("reg", "repository:b:pull", None) == "Bearer t2"  # per scope
    now[0] += 120
    assert await auth.authorization("reg", "repository:a:pull", None) == "Bearer t3"
    assert URL(calls[0]).query == {"service": "svc", "scope": "repository:a:pull"}


async def test_sock_read_timeout_is_retried(serve, make_resolver):
    reg = FakeRegistry()
    stalls = {"left": 1}
    original = reg.manifest

    async def slow_once(request: web.Request) -> web.StreamResponse:
        if stalls["left"]:
            stalls["left"] -= 1
            await asyncio.sleep(0.5)
        return await original(request)

    reg.manifest = slow_once  # type: ignore[method-assign]
    host = await serve(reg.app())
    _, desc = await make_resolver(read_timeout=0.1).resolve(parse(f"{host}/library/busybox"))
    assert desc.digest == sha(MANIFEST)


async def test_interrupted_blob_download_is_unavailable():
    async def truncating(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BLOB) + BLOB[:100])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(truncating, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    resolver = Resolver(RegistryHostsConfig(docker_config="/nonexistent/config.json"), retry=FAST)
    try:
        ref = parse(f"127.0.0.1:{port}/library/busybox")
        stream = await resolver.fetch_blob(resolver.endpoints(ref)[0], ref, BLOB_DESC)
        received = bytearray()
        with pytest.raises(Unavailable, match="interrupted at byte 100"):
            async for chunk in stream:
                received += chunk
        assert bytes(received) == BLOB[:100]
    finally:
        await resolver.close()
        server.close()
        await server.wait_closed()
