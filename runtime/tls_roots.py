"""The system's CA certificates read as verifications need them, for TLS contexts built at import time.

aiohttp builds two TLS client contexts when it is imported, each parsing the whole system CA bundle (about
150 certificates, 1 MiB) whether or not the process ever verifies a server. pyruntimed's command
(runtime/entry.py) imports it inside read_on_demand(). Pointed
at the hashed certificate directory alone, OpenSSL reads a CA from it when a chain needs that one, as Go's
daemons (dockerd, containerd) read the system roots only at first use. Only what is built inside the block
is affected: the settings are restored after it, and children never see them.
"""
from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator

def _hashed(directory: str) -> bool:
    """Whether `directory` holds c_rehash's links (<hash>.0), which lookups by subject need."""
    try:
        return any(name.endswith(".0") for name in os.listdir(directory))
    except OSError:
        return False


def _default(setting: str | None, default: str) -> bool:
    """Whether an SSL_CERT_* `setting` leaves OpenSSL's own `default` in force (unset, or naming it)."""
    if setting is None:
        return True
    try:
        return os.path.samefile(setting, default)
    except OSError:
        return False


@contextlib.contextmanager
def read_on_demand() -> Iterator[None]:
    """Inside: default TLS contexts find CAs in the hashed directory, not in the bundle. Nothing changes where
    SSL_CERT_FILE or SSL_CERT_DIR name other certificates than the system's, or where the directory is not
    hashed (the bundle is then all there is)."""
    paths = ssl.get_default_verify_paths()
    before = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if not (_default(before["SSL_CERT_FILE"], paths.openssl_cafile)
            and _default(before["SSL_CERT_DIR"], paths.openssl_capath) and _hashed(paths.openssl_capath)):
        yield
        return
    os.environ.update(SSL_CERT_FILE=os.devnull, SSL_CERT_DIR=paths.openssl_capath)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
