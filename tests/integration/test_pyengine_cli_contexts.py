"""`pyengine context` against `docker context`: the same invocations through both CLIs, each in a docker config
directory of its own, compared (stdout, stderr, exit code; the config directory and the default endpoint, which
differ by design, masked); config.json after `use`; and each CLI reading the store the other wrote."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.fixtures.certs import issue, make_ca
from tests.integration.helpers import BIN

PYENGINE = str(BIN / "pyengine")
_DEFAULT_ENDPOINTS = ("unix:///var/run/docker.sock", "unix:///run/pyengine/engine.sock")

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")


def _steps(certs: Path) -> list[list[str]]:
    tls = f"host=tcp://127.0.0.1:2376,ca={certs / 'ca.pem'},cert={certs / 'cert.pem'},key={certs / 'key.pem'}"
    return [
        ["create", "a1", "--docker", "host=tcp://127.0.0.1:2376", "--description", "first one"],
        ["create", "a2", "--docker", "host=unix:///tmp/x.sock,skip-tls-verify=true"],
        ["create", "a3", "--docker", tls],
        ["create", "a1", "--docker", "host=unix:///other.sock"],
        ["create", "bad name", "--docker", "host=unix:///x.sock"],
        ["create", "x", "--docker", "host=unix:///x.sock"],
        ["create", "default"],
        ["create", "b1", "--docker", "nohost=1"],
        ["create", "b2", "--docker", "host=tcp://h:1,skip-tls-verify=yes"],
        ["create", "a4", "--from", "a1"],
        ["create", "a5", "--docker", "from=a3", "--description", "copied"],
        ["create", "a6"],
        ["ls"],
        ["ls", "-q"],
        ["ls", "--format", "json"],
        ["ls", "--format", "{{.Name}} {{.Current}} {{.Description}}"],
        ["ls", "--format", "table {{.Name}}\t{{.DockerEndpoint}}"],
        ["use", "a1"],
        ["show"],
        ["ls"],
        ["inspect"],
        ["inspect", "a2", "a3", "default"],
        ["inspect", "-f", "{{.Name}}: {{.Endpoints.docker.Host}} {{json .TLSMaterial}}", "a1", "a5"],
        ["inspect", "nope", "a1"],
        ["inspect", "nope"],
        ["update", "a2", "--description", "new"],
        ["update", "a2", "--docker", "host=tcp://1.2.3.4:5"],
        ["inspect", "a2"],
        ["update", "nope", "--description", "x"],
        ["rm", "a1"],
        ["rm", "nope"],
        ["rm", "default"],
        ["rm", "-f", "a1"],
        ["show"],
        ["use", "nope"],
        ["use", "a2"],
        ["use", "default"],
        ["show"],
        ["export", "a3", "{config}/a3.ctx"],
        ["import", "a3copy", "{config}/a3.ctx"],
        ["inspect", "a3copy"],
        ["import", "a3copy", "{config}/a3.ctx"],
        ["import", "bad name", "{config}/a3.ctx"],
        ["import", "a7", "{config}/missing.ctx"],
        ["export", "nope", "{config}/nope.ctx"],
        ["export", "a3", "{config}/a3.ctx"],
        ["export", "bad name"],
        ["export", "default", "{config}/default.ctx"],
        ["import", "from-default", "{config}/default.ctx"],
        ["inspect", "from-default"],
        ["rm", "a2", "a3", "a4", "a3copy", "from-default"],
        ["ls"],
    ]


def _normal(text: str, config: Path) -> str:
    text = text.replace(str(config), "<CONFIG>")
    for endpoint in _DEFAULT_ENDPOINTS:
        text = text.replace(endpoint, "<DEFAULT>")
    # Table columns are as wide as their widest cell, which the masked endpoint changes.
    return "\n".join(re.sub(r" {2,}", "  ", line).rstrip() for line in text.splitlines())


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DOCKER_HOST", "PYENGINE_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                        "DOCKER_TLS")}
    return dict(env, DOCKER_CONFIG=str(config))


def _run(cli: str, args: list[str], config: Path) -> tuple[int, str, str]:
    args = [a.replace("{config}", str(config)) for a in args]
    out = subprocess.run([cli, "context", *args], env=_env(config), capture_output=True, text=True, timeout=60,
                         check=False)
    return out.returncode, _normal(out.stdout, config), _normal(out.stderr, config)


def test_context_commands_match_the_docker_cli(tmp_path: Path) -> None:
    certs = issue(make_ca("contexts CA"), tmp_path / "certs", "client", server=False)
    configs = {"docker": tmp_path / "docker", PYENGINE: tmp_path / "pyengine"}
    for config in configs.values():
        config.mkdir()
    mismatches = []
    for args in _steps(certs):
        docker, ours = (_run(cli, args, config) for cli, config in configs.items())
        if docker != ours:
            mismatches.append(f"context {' '.join(args)}:\n  docker:   {docker!r}\n  pyengine: {ours!r}")
        if args[0] == "use":
            files = [(config / "config.json").read_text() for config in configs.values()]
            assert files[0] == files[1], (args, files)
    assert not mismatches, "\n".join(mismatches)


def test_each_cli_reads_the_store_the_other_wrote(tmp_path: Path) -> None:
    certs = issue(make_ca("contexts CA"), tmp_path / "certs", "client", server=False)
    config = tmp_path / "config"
    config.mkdir()
    spec = f"host=tcp://127.0.0.1:2376,ca={certs / 'ca.pem'},cert={certs / 'cert.pem'},key={certs / 'key.pem'}"
    assert _run("docker", ["create", "by-docker", "--docker", spec, "--description", "d"], config)[0] == 0
    assert _run(PYENGINE, ["create", "by-pyengine", "--docker", spec, "--description", "d"], config)[0] == 0
    for name in ("by-docker", "by-pyengine"):
        assert _run(PYENGINE, ["inspect", name], config) == _run("docker", ["inspect", name], config)
    assert _run(PYENGINE, ["ls"], config) == _run("docker", ["ls"], config)
    assert _run(PYENGINE, ["use", "by-docker"], config)[0] == 0
    assert _run("docker", ["show"], config)[1] == "by-docker"
    assert _run("docker", ["rm", "-f", "by-docker"], config)[0] == 0
    assert _run(PYENGINE, ["show"], config)[1] == "default"
    assert _run(PYENGINE, ["ls", "-q"], config)[1] == "by-pyengine\ndefault"
    # Each CLI imports what the other exported, TLS material included.
    assert _run(PYENGINE, ["export", "by-pyengine", "{config}/p.ctx"], config)[0] == 0
    assert _run("docker", ["create", "by-docker-2", "--from", "by-pyengine"], config)[0] == 0
    assert _run("docker", ["export", "by-docker-2", "{config}/d.ctx"], config)[0] == 0
    assert _run("docker", ["import", "from-pyengine", "{config}/p.ctx"], config)[0] == 0
    assert _run(PYENGINE, ["import", "from-docker", "{config}/d.ctx"], config)[0] == 0
    for name, source in (("from-pyengine", "by-pyengine"), ("from-docker", "by-docker-2")):
        ours, theirs = _run(PYENGINE, ["inspect", name], config), _run("docker", ["inspect", source], config)
        assert ours[0] == theirs[0] == 0 and '"ca.pem"' in ours[1]
        assert ours[1].replace(name, source).replace(store_id(name), store_id(source)) == theirs[1]
    # Through a pipe, both ways.
    env = _env(config)
    exported = subprocess.run([PYENGINE, "context", "export", "by-pyengine", "-"], env=env, capture_output=True,
                              check=True).stdout
    imported = subprocess.run(["docker", "context", "import", "piped", "-"], env=env, input=exported,
                              capture_output=True, check=False)
    assert imported.returncode == 0, imported.stderr


def store_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def test_import_refuses_archives_that_name_files_outside_the_context(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    meta = json.dumps({"Name": "x", "Metadata": {}, "Endpoints": {"docker": {"Host": "unix:///x.sock"}}}).encode()
    for hostile in ("tls/../../../escape", "tls/docker/../../escape", "tls/docker", "tls//ca.pem"):
        archive = tmp_path / "hostile.tar"
        with tarfile.open(archive, "w") as tar:
            for path, data in (("meta.json", meta), (hostile, b"data")):
                info = tarfile.TarInfo(path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        code, _, err = _run(PYENGINE, ["import", "hostile", str(archive)], config)
        assert code == 1 and "archive format is invalid" in err, (hostile, err)
        assert not (config / "contexts" / "meta" / store_id("hostile")).exists()
    assert not list(tmp_path.rglob("escape"))
    (tmp_path / "empty.tar").write_bytes(b"\0" * 1024)
    code, _, err = _run(PYENGINE, ["import", "empty", str(tmp_path / "empty.tar")], config)
    assert code == 1 and "invalid context: no metadata found" in err
    (tmp_path / "junk.tar").write_bytes(b"not an archive at all" * 40)
    code, _, err = _run(PYENGINE, ["import", "junk", str(tmp_path / "junk.tar")], config)
    assert code == 1 and "Traceback" not in err and err
