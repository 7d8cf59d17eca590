"""`pyengine` against a daemon that serves mutual TLS (`pyengined -H tcp://… --tlsverify`), as the docker CLI
reaches one: the --tls* options, $DOCKER_TLS_VERIFY with $DOCKER_CERT_PATH, a context's TLS material (made by
either CLI), hijacked streams (run -i, exec -i, attach on a terminal) over TLS, and the docker CLI's error and
exit code when the daemon's certificate is not trusted. Also `ssh://` hosts, through an `ssh` stand-in that
runs `docker system dial-stdio` here."""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures._net import LOOPBACK
from tests.fixtures.certs import issue, make_ca
from tests.integration.helpers import BIN, PtyProcess
from tests.integration.test_engine_tls import TLSEngine, tls  # noqa: F401  (the TLS engine fixture)

PYENGINE = str(BIN / "pyengine")


@pytest.fixture(autouse=True)
def no_leftovers(tls: TLSEngine) -> Iterator[None]:  # noqa: F811
    yield
    tls.engine.reset()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """An empty docker config directory, so no context of the host's leaks in."""
    directory = tmp_path / "config"
    directory.mkdir()
    return directory


def _base_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DOCKER_HOST", "PYENGINE_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT",
                        "DOCKER_TLS")}
    return dict(env, DOCKER_CONFIG=str(config))


def _run(argv: list[str], env: dict[str, str], input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, input=input, capture_output=True, text=True, timeout=60, check=False)


def _flags(tls: TLSEngine, cert_dir: Path) -> list[str]:  # noqa: F811
    return ["-H", f"tcp://{LOOPBACK}:{tls.port}", "--tlsverify", "--tlscacert", str(cert_dir / "ca.pem"),
            "--tlscert", str(cert_dir / "cert.pem"), "--tlskey", str(cert_dir / "key.pem")]


def _ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, f"{out.args}: {out.stdout}\n{out.stderr}"
    return out.stdout


def test_the_tls_options_reach_the_daemon(tls: TLSEngine, config: Path) -> None:  # noqa: F811
    env, flags = _base_env(config), _flags(tls, tls.certs / "client")
    assert _ok(_run([PYENGINE, *flags, "version", "-f", "{{.Server.ApiVersion}}"], env)).strip()
    assert _ok(_run([PYENGINE, *flags, "run", "--rm", "busybox", "echo", "hello over tls"], env)) \
        == "hello over tls\n"
    cid = _ok(_run([PYENGINE, *flags, "run", "-d", "--name", "talker", "busybox", "sh", "-c",
                    "echo one; echo two >&2; sleep 60"], env)).strip()
    assert _ok(_run([PYENGINE, *flags, "ps", "-q", "--no-trunc"], env)).split() == [cid]
    logs = _run([PYENGINE, *flags, "logs", "talker"], env)
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, "one\n", "two\n")
    # stdin's end travels as a close_notify; the output still comes back after it.
    assert _ok(_run([PYENGINE, *flags, "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo end"], env,
                    input="piped\n")) == "piped\nend\n"
    assert _ok(_run([PYENGINE, *flags, "exec", "-i", "talker", "cat"], env, input="exec stdin\n")) == "exec stdin\n"
    big = 4 * 1024 * 1024
    assert _ok(_run([PYENGINE, *flags, "run", "--rm", "-i", "busybox", "wc", "-c"], env, input="y" * big)).strip() \
        == str(big)


def test_the_environment_selects_tls_as_docker_s_does(tls: TLSEngine, config: Path) -> None:  # noqa: F811
    env = dict(_base_env(config), DOCKER_HOST=f"tcp://{LOOPBACK}:{tls.port}", DOCKER_TLS_VERIFY="1",
               DOCKER_CERT_PATH=str(tls.certs / "client"))
    assert _ok(_run([PYENGINE, "ps", "-a"], env)).startswith("CONTAINER ID")
    # Without TLS the daemon does not answer HTTP.
    plain = _run([PYENGINE, "-H", f"tcp://{LOOPBACK}:{tls.port}", "ps"], _base_env(config))
    assert plain.returncode == 1, plain.stderr


def test_attach_on_a_terminal_over_tls(tls: TLSEngine, config: Path) -> None:  # noqa: F811
    env, flags = _base_env(config), _flags(tls, tls.certs / "client")
    cid = _ok(_run([PYENGINE, *flags, "run", "-d", "-it", "--network", "none", "busybox", "sh"], env)).strip()
    p = PtyProcess([PYENGINE, *flags, "attach", cid], env)
    p.read_until(b"# ")  # the shell redraws its prompt at the terminal size the CLI sends once attached
    p.write(b"echo $((6*7))-over-tls\r")
    p.read_until(b"42-over-tls\r\n")
    p.write(b"exit 3\r")
    assert p.wait() == 3


def test_an_untrusted_daemon_fails_as_with_docker(tls: TLSEngine, config: Path, tmp_path: Path) -> None:  # noqa: F811
    """A CA that did not sign the daemon's certificate: the docker CLI's words and exit codes."""
    other = issue(make_ca("someone else"), tmp_path / "other", "client", server=False)
    env = _base_env(config)
    for command in (["ps"], ["version", "-f", "{{.Server.Version}}"], ["run", "--rm", "busybox", "true"]):
        ours = _run([PYENGINE, *_flags(tls, other), *command], env)
        docker = _run(["docker", *_flags(tls, other), *command], env)
        assert ours.returncode == docker.returncode != 0, (command, ours.stderr, docker.stderr)
        assert "tls: failed to verify certificate: x509: certificate signed by unknown authority" in docker.stderr
        assert "tls: failed to verify certificate: x509: certificate signed by unknown authority" in ours.stderr
        # docker's `run` pings first and names that request; the others name the request that failed.
        assert "error during connect: " in ours.stderr
    # A client certificate the daemon does not trust: refused by the daemon.
    ours = _run([PYENGINE, *_flags(tls, other), "ps"], env)
    assert ours.stderr == _run(["docker", *_flags(tls, other), "ps"], env).stderr
    stranger = _run([PYENGINE, *_flags(tls, tls.certs / "stranger"), "ps"], env)
    assert stranger.returncode == 1 and "remote error: tls: unknown certificate authority" in stranger.stderr, \
        stranger.stderr
    missing = _run([PYENGINE, *_flags(tls, tmp_path / "nowhere"), "ps"], env)
    assert missing.returncode == 1 and "could not read CA certificate" in missing.stderr, missing.stderr


def test_a_tls_context_made_by_either_cli_serves_the_other(tls: TLSEngine, config: Path) -> None:  # noqa: F811
    env, c = _base_env(config), tls.certs / "client"
    spec = f"host=tcp://{LOOPBACK}:{tls.port},ca={c / 'ca.pem'},cert={c / 'cert.pem'},key={c / 'key.pem'}"
    _ok(_run(["docker", "context", "create", "by-docker", "--docker", spec], env))
    _ok(_run([PYENGINE, "context", "create", "by-pyengine", "--docker", spec], env))
    for cli in (PYENGINE, "docker"):
        for context in ("by-docker", "by-pyengine"):
            assert _ok(_run([cli, "--context", context, "ps", "-a", "-q"], env)) == ""
    _ok(_run([PYENGINE, "context", "use", "by-docker"], env))
    assert _ok(_run([PYENGINE, "run", "--rm", "busybox", "echo", "via context"], env)) == "via context\n"
    # SkipTLSVerify: TLS without checking the daemon's certificate (and without a client one, refused).
    _ok(_run([PYENGINE, "context", "create", "skipping", "--docker",
              f"host=tcp://{LOOPBACK}:{tls.port},skip-tls-verify=true"], env))
    out = _run([PYENGINE, "--context", "skipping", "ps"], env)
    assert out.returncode == 1 and "remote error: tls: certificate required" in out.stderr, out.stderr


def test_ssh_hosts_run_dial_stdio_on_the_far_side(tls: TLSEngine, config: Path, tmp_path: Path) -> None:  # noqa: F811
    """`ssh://` through an `ssh` on PATH that logs its arguments and runs the remote command here."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "ssh.log"
    (bindir / "ssh").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'while [ "$1" != "--" ]; do shift; done; shift; shift\n'
        f'DOCKER_HOST={tls.engine.host} exec "$@"\n')
    (bindir / "ssh").chmod(0o755)
    env = dict(_base_env(config), PATH=f"{bindir}:{os.environ['PATH']}")
    host = "ssh://someone@far.example:2222"
    assert _ok(_run([PYENGINE, "-H", host, "run", "--rm", "busybox", "echo", "over ssh"], env)) == "over ssh\n"
    assert _ok(_run([PYENGINE, "-H", host, "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo end"], env,
                    input="piped\n")) == "piped\nend\n"
    assert re.search(r"^-o ConnectTimeout=30 -T -l someone -p 2222 -- far\.example docker system dial-stdio$",
                     log.read_text(), re.M), log.read_text()
    # One ssh serves a command's requests in turn (ping, create, start, wait, ...), as docker's keep-alive does.
    log.write_text("")
    assert _ok(_run([PYENGINE, "-H", host, "run", "-d", "--name", "over-ssh", "busybox", "sleep", "30"], env))
    assert _ok(_run([PYENGINE, "-H", host, "rm", "-f", "over-ssh"], env)) == "over-ssh\n"
    assert len(log.read_text().splitlines()) == 2, log.read_text()
    bad = _run([PYENGINE, "-H", "ssh://far.example/some/path", "ps"], env)
    assert bad.returncode == 125 and "extra path" in bad.stderr
