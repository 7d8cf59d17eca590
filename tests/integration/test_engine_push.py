"""Issue 11 acceptance 6: docker login + docker push to a registry with auth, as the docker CLI, the SDK and
pyengine do them; the pushed image pulls back on a fresh root with the same digest."""
from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.fixtures.daemons import EngineDaemon, RuntimeDaemon
from tests.fixtures.registry import Registry, access_log
from tests.integration.helpers import BIN, pull

BUSYBOX = "library/busybox:latest"


@pytest.fixture(scope="module", params=["basic", "token"])
def auth_registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    """A registry of this module's own (pushes change it), with htpasswd or token auth."""
    with Registry(auth=request.param) as reg:
        yield reg


@pytest.fixture
def engine(runtime_daemon: RuntimeDaemon, registry: Registry) -> Iterator[EngineDaemon]:
    """busybox resolves offline through the fixture registry as Docker Hub's mirror."""
    e = EngineDaemon(runtime_daemon, extra_args=["--registry-mirror", f"http://{registry.host}"])
    e.start()
    try:
        yield e
    finally:
        e.cleanup()


@pytest.fixture
def env(engine: EngineDaemon, tmp_path: Path) -> dict[str, str]:
    """The docker CLI's environment with a config dir of the test's own: logins never touch the host's."""
    return dict(engine.env(), DOCKER_CONFIG=str(tmp_path / "docker-config"))


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), env=env, input=stdin, capture_output=True, text=True, timeout=180)


def ok(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    out = run(env, *args, stdin=stdin)
    assert out.returncode == 0, f"{' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def blob_writes(reg: Registry, repo: str) -> list[str]:
    return [f"{e.method} {e.uri}" for e in access_log(reg)
            if e.uri.startswith(f"/v2/{repo}/blobs/uploads/") and e.method in ("POST", "PATCH", "PUT")
            and e.status < 400]


def login(env: dict[str, str], reg: Registry, password: str | None = None) -> subprocess.CompletedProcess[str]:
    user, pw = reg.credentials or ("", "")
    return run(env, "docker", "login", reg.host, "-u", user, "--password-stdin", stdin=password or pw)


def test_docker_login_push_and_pull_back(engine, env, auth_registry, images, tmp_path):
    image = images[BUSYBOX]
    repo = f"team{secrets.token_hex(3)}/busybox"
    target = f"{auth_registry.host}/{repo}"
    ok(env, "docker", "pull", "busybox")
    ok(env, "docker", "tag", "busybox", f"{target}:v1")

    out = login(env, auth_registry)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("Login Succeeded")
    config = json.loads((tmp_path / "docker-config" / "config.json").read_text())
    assert auth_registry.host in config["auths"]

    lines = ok(env, "docker", "push", f"{target}:v1").splitlines()
    layer = short(image.config_json["rootfs"]["diff_ids"][0])
    assert lines[0] == f"The push refers to repository [{target}]"
    assert f"{layer}: Preparing" in lines and f"{layer}: Pushed" in lines
    assert lines[-1] == f"v1: digest: {image.digest} size: {image.size}"

    # A fresh root pulls what was pushed: the same manifest, byte for byte.
    (tmp_path / "fresh").mkdir()
    fresh = RuntimeDaemon(str(tmp_path / "fresh"))
    fresh.start()
    try:
        async def pull_back() -> str:
            user, password = auth_registry.credentials or ("", "")
            async with fresh.client() as c:
                got = await pull(c, f"{target}:v1", credentials={"username": user, "password": password})
                return str(got["target"]["digest"])

        assert asyncio.run(pull_back()) == image.digest
    finally:
        fresh.cleanup()

    before = len(blob_writes(auth_registry, repo))
    again = ok(env, "docker", "push", f"{target}:v1").splitlines()
    assert f"{layer}: Layer already exists" in again
    assert len(blob_writes(auth_registry, repo)) == before

    # Another repository of the registry: mounted, not uploaded.
    other = f"other{secrets.token_hex(3)}/busybox"
    ok(env, "docker", "tag", "busybox", f"{auth_registry.host}/{other}:v2")
    mounted = ok(env, "docker", "push", f"{auth_registry.host}/{other}:v2").splitlines()
    assert f"{layer}: Mounted from {repo}" in mounted
    assert not [w for w in blob_writes(auth_registry, other) if not w.startswith("POST")]

    events = ok(env, "docker", "events", "--since", "0", "--until", f"{time.time():.3f}", "--filter", "event=push",
                "--format", "{{.Actor.ID}}").split()
    assert f"{target}:v1" in events

    # As dockerd: a push records the repository digest it made, and the repository's last tag takes it along.
    digests = json.loads(ok(env, "docker", "image", "inspect", "-f", "{{json .RepoDigests}}", f"{target}:v1"))
    assert f"{target}@{image.digest}" in digests
    removed = ok(env, "docker", "rmi", f"{target}:v1").splitlines()
    assert removed == [f"Untagged: {target}:v1", f"Untagged: {target}@{image.digest}"]
    digests = json.loads(ok(env, "docker", "image", "inspect", "-f", "{{json .RepoDigests}}", "busybox"))
    assert f"{target}@{image.digest}" not in digests


def test_wrong_credentials_and_unknown_image(engine, env, auth_registry):
    out = login(env, auth_registry, "wrong")
    assert out.returncode == 1
    if auth_registry.auth == "basic":
        assert f"login attempt to http://{auth_registry.host}/v2/ failed with status: 401 Unauthorized" in out.stderr
    else:
        # The fixture's token server words its refusal in neither of the shapes dockerd reads.
        assert f'Get "http://{auth_registry.host}/v2/": unauthorized: authentication required' in out.stderr
    # An `auth` that is not base64 (here not even ASCII) is the client's mistake: 400, never a 500.
    sdk = docker.DockerClient(base_url=engine.host)
    try:
        for bad in ("\u023e\u023e", "!!notbase64", base64.b64encode(b"\xff\xfe").decode()):
            resp = sdk.api.post(sdk.api._url("/auth"), json={"auth": bad, "serveraddress": auth_registry.host})
            assert resp.status_code == 400 and "auth" in resp.json()["message"], (bad, resp.text)
    finally:
        sdk.close()
    missing = run(env, "docker", "push", f"{auth_registry.host}/nothing/here:v1")
    assert missing.returncode == 1
    # As dockerd: the repository is named first, then the error comes in the stream.
    assert missing.stdout.startswith(f"The push refers to repository [{auth_registry.host}/nothing/here]")
    assert "tag does not exist" in missing.stderr or "does not exist locally" in missing.stderr


def test_a_pull_the_registry_refuses_fails_without_a_login_prompt(engine, env, auth_registry):
    """dockerd answers 500: the docker CLI asks for a login only on a 401, and would wait on a script's stdin."""
    out = subprocess.run(["docker", "pull", f"{auth_registry.host}/private/busybox:1"], env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.startswith("Error response from daemon: "), out
    assert "Username" not in out.stdout + out.stderr


def test_a_push_to_a_registry_out_of_reach_fails_before_its_layers(engine, env, images):
    """dockerd pings the registry first: the repository's line, then the error, no `Preparing`."""
    ok(env, "docker", "pull", "busybox")
    ok(env, "docker", "tag", "busybox", "127.0.0.1:1/nowhere/busybox:1")
    out = run(env, "docker", "push", "127.0.0.1:1/nowhere/busybox:1")
    assert out.returncode == 1 and "dial tcp 127.0.0.1:1: connect: connection refused" in out.stderr, out
    assert out.stdout.splitlines() == ["The push refers to repository [127.0.0.1:1/nowhere/busybox]"], out.stdout
    ok(env, "docker", "rmi", "127.0.0.1:1/nowhere/busybox:1")


def test_push_all_tags(engine, env, auth_registry, images):
    digest = images[BUSYBOX].digest
    repo = f"{auth_registry.host}/all{secrets.token_hex(3)}/busybox"
    ok(env, "docker", "pull", "busybox")
    ok(env, "docker", "tag", "busybox", f"{repo}:a")
    ok(env, "docker", "tag", "busybox", f"{repo}:b")
    # Without a login the registry's refusal comes in the stream, after the first message.
    out = run(env, "docker", "push", "--all-tags", repo)
    assert out.returncode == 1 and "authentication" in out.stderr
    assert out.stdout.startswith(f"The push refers to repository [{repo}]")
    assert login(env, auth_registry).returncode == 0
    lines = ok(env, "docker", "push", "--all-tags", repo).splitlines()
    assert [line for line in lines if ": digest: " in line] == [f"a: digest: {digest} size: {images[BUSYBOX].size}",
                                                               f"b: digest: {digest} size: {images[BUSYBOX].size}"]


def test_sdk_push_stream(engine, auth_registry, images):
    image = images[BUSYBOX]
    user, password = auth_registry.credentials or ("", "")
    client = docker.DockerClient(base_url=engine.host)
    try:
        client.images.pull("busybox", tag="latest")
        repo = f"{auth_registry.host}/sdk{secrets.token_hex(3)}/busybox"
        client.images.get("busybox:latest").tag(repo, "v1")
        assert client.login(username=user, password=password, registry=auth_registry.host)["Status"] == \
            "Login Succeeded"
        with pytest.raises(docker.errors.APIError) as e:
            client.login(username=user, password="wrong", registry=auth_registry.host, reauth=True)
        assert e.value.status_code == 401
        messages = list(client.images.push(repo, tag="v1", stream=True, decode=True,
                                           auth_config={"username": user, "password": password}))
        assert messages[0] == {"status": f"The push refers to repository [{repo}]"}
        assert messages[-1] == {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": image.digest,
                                                              "Size": image.size}}
        assert not [m for m in messages if "error" in m]
        pushing = [m for m in messages if m.get("status") == "Pushing"]
        assert pushing and all(set(m["progressDetail"]) == {"current", "total"} for m in pushing)

        # `platform` must match a single-platform image (the fixture's busybox says amd64).
        def push_for(arch: str) -> int:
            auth = base64.urlsafe_b64encode(json.dumps({"username": user, "password": password}).encode()).decode()
            resp = client.api._post(client.api._url("/images/{0}/push", repo),
                                    params={"tag": "v1", "platform": json.dumps({"os": "linux", "architecture": arch})},
                                    headers={"X-Registry-Auth": auth})
            return int(resp.status_code)

        assert push_for("amd64") == 200
        assert push_for("s390x") == 404
    finally:
        client.close()


def test_pyengine_login_push_logout(engine, env, auth_registry, images, tmp_path):
    user, password = auth_registry.credentials or ("", "")
    pyengine = str(BIN / "pyengine")
    env = dict(env, PYENGINE_HOST=engine.host)
    ok(env, pyengine, "pull", "busybox")
    repo = f"{auth_registry.host}/cli{secrets.token_hex(3)}/busybox"
    ok(env, "docker", "tag", "busybox", f"{repo}:v1")
    out = ok(env, pyengine, "login", auth_registry.host, "-u", user, "--password-stdin", stdin=password)
    assert out.strip() == "Login Succeeded"
    config = json.loads((tmp_path / "docker-config" / "config.json").read_text())
    assert set(config["auths"]) == {auth_registry.host}
    pushed = ok(env, pyengine, "push", f"{repo}:v1").splitlines()
    assert pushed[-1] == f"v1: digest: {images[BUSYBOX].digest} size: {images[BUSYBOX].size}"
    # The docker CLI reads pyengine's login, and the other way round.
    assert "Layer already exists" in ok(env, "docker", "push", f"{repo}:v1")
    assert ok(env, pyengine, "logout", auth_registry.host).strip() == \
        f"Removing login credentials for {auth_registry.host}"
    assert json.loads((tmp_path / "docker-config" / "config.json").read_text())["auths"] == {}
    bad = run(env, pyengine, "push", f"{repo}:v1")
    assert bad.returncode == 1 and "authentication" in bad.stderr
