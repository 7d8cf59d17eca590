"""pyengine's image-making commands (build, commit, import, tag, history) against a test pyengined."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.integration.test_pyengine_cli import PYENGINE, env_of


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


def ok(engine: EngineDaemon, *args: str, input: bytes | None = None) -> str:
    out = subprocess.run([PYENGINE, *args], env=env_of(engine), capture_output=True, input=input, timeout=120,
                         check=False)
    assert out.returncode == 0, f"pyengine {' '.join(args)}: {out.stdout!r}\n{out.stderr!r}"
    return out.stdout.decode()


def test_build_tag_history_commit_and_import(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM busybox\nARG WHO\nCOPY hello.txt /\nRUN echo \"$WHO\" >> /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n")
    out = ok(engine, "build", "-t", "cli:v1", "-f", str(outside), "--build-arg", "WHO=world", str(ctx))
    assert "Successfully tagged cli:v1" in out
    assert ok(engine, "run", "--rm", "cli:v1") == "hello\nworld\n"
    image_id = ok(engine, "build", "-q", "-f", str(outside), "--build-arg", "WHO=world", str(ctx)).strip()
    assert image_id.startswith("sha256:")
    ok(engine, "tag", "cli:v1", "cli:v2")
    history = ok(engine, "history", "--no-trunc", "cli:v2")
    assert "COPY file:" in history and "echo \"$WHO\"" in history
    ok(engine, "run", "--name", "tocommit", "cli:v1", "sh", "-c", "echo more >> /hello.txt")
    committed = ok(engine, "commit", "-c", "ENV FROM_COMMIT=1", "tocommit", "cli:committed").strip()
    assert committed.startswith("sha256:")
    # The container's command is the committed image's (dockerd's merge): run it with another.
    assert ok(engine, "run", "--rm", "cli:committed", "cat", "/hello.txt") == "hello\nworld\nmore\n"
    assert "FROM_COMMIT=1" in ok(engine, "run", "--rm", "cli:committed", "env")
    ok(engine, "export", "-o", str(tmp_path / "fs.tar"), "tocommit")
    imported = ok(engine, "import", "-c", "CMD [\"/bin/cat\", \"/hello.txt\"]", str(tmp_path / "fs.tar"),
                  "cli:imported").strip()
    assert imported.startswith("sha256:")
    assert ok(engine, "run", "--rm", "cli:imported") == "hello\nworld\nmore\n"
    ok(engine, "rm", "-f", "tocommit")
