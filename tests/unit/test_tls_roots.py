"""runtime/tls_roots.py: default TLS contexts built inside read_on_demand() parse no CA up front, and still
verify a server whose CA is in the hashed directory."""
from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from runtime import tls_roots
from tests.fixtures.certs import issue, make_ca


@pytest.fixture
def hashed_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A CA directory with c_rehash's links, standing in for /etc/ssl/certs; and a server issued by that CA."""
    ca = make_ca("tls-roots-test")
    server = issue(ca, tmp_path / "server", "localhost", server=True)
    roots = tmp_path / "roots"
    roots.mkdir()
    shutil.copy(server / "ca.pem", roots / "test-ca.pem")
    subprocess.run(["openssl", "rehash", str(roots)], check=True)
    paths = ssl.get_default_verify_paths()
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths._replace(openssl_capath=str(roots)))
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return roots, server


def _handshake(client: ssl.SSLContext, server_dir: Path) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(server_dir / "cert.pem", server_dir / "key.pem")
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, end, out, peer_in in (("c", c, c_out, s_in), ("s", s, s_out, c_in)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_contexts_built_inside_load_no_ca_and_still_verify(hashed_dir: tuple[Path, Path]) -> None:
    _, server = hashed_dir
    with tls_roots.read_on_demand():
        ctx = ssl.create_default_context()
    assert ctx.cert_store_stats()["x509_ca"] == 0
    _handshake(ctx, server)
    assert "SSL_CERT_FILE" not in os.environ and "SSL_CERT_DIR" not in os.environ


def test_settings_that_name_the_systems_own_certificates_are_no_change(
        hashed_dir: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    roots, server = hashed_dir
    monkeypatch.setenv("SSL_CERT_DIR", str(roots))
    with tls_roots.read_on_demand():
        ctx = ssl.create_default_context()
    assert ctx.cert_store_stats()["x509_ca"] == 0
    _handshake(ctx, server)
    assert os.environ["SSL_CERT_DIR"] == str(roots) and "SSL_CERT_FILE" not in os.environ


def test_a_directory_without_hash_links_or_a_users_setting_changes_nothing(
        hashed_dir: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    roots, _ = hashed_dir
    for link in roots.glob("*.0"):
        link.unlink()
    with tls_roots.read_on_demand():
        assert "SSL_CERT_DIR" not in os.environ
    monkeypatch.setenv("SSL_CERT_FILE", "/somewhere/bundle.pem")
    with tls_roots.read_on_demand():
        assert os.environ["SSL_CERT_FILE"] == "/somewhere/bundle.pem" and "SSL_CERT_DIR" not in os.environ
    assert os.environ["SSL_CERT_FILE"] == "/somewhere/bundle.pem"
