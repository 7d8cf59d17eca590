"""The server side of dockerd's TLS options: which TLS a tcp host is served with.

- `--tls`: TLS with the server's certificate and key; clients are not asked for one.
- `--tlsverify` (implies `--tls`): mutual TLS; a client must present a certificate signed by
  `--tlscacert`, or the handshake fails. Only that CA is trusted, never the system's roots.
Unix sockets (and socket-activated unix sockets) stay plain: file permissions guard them.
"""
from __future__ import annotations

import os
import ssl
from pathlib import Path

from engine.config import Config


def cert_dir() -> Path:
    """Where unset certificate paths are looked up, as dockerd: $DOCKER_CERT_PATH, else ~/.docker."""
    return Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")


def server_context(cfg: Config) -> ssl.SSLContext | None:
    """The TLS context tcp hosts are served with, or None when TLS is off. Raises ValueError naming the
    option and file that cannot be used."""
    if not (cfg.tls or cfg.tlsverify):
        return None
    certs = cert_dir()
    cert, key = cfg.tlscert or str(certs / "cert.pem"), cfg.tlskey or str(certs / "key.pem")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"could not load X509 key pair (--tlscert {cert}, --tlskey {key}): {e}") from None
    if cfg.tlsverify:
        ca = cfg.tlscacert or str(certs / "ca.pem")
        try:
            ctx.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"could not read CA certificate (--tlscacert {ca}): {e}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif cfg.tlscacert:
        raise ValueError("--tlscacert is only used with --tlsverify (client certificates are not checked "
                         "with --tls alone)")
    return ctx
