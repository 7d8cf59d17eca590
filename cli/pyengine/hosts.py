"""Which daemon to talk to, and with which TLS, as the docker CLI chooses: -H, then $PYENGINE_HOST, then
$DOCKER_HOST (those three with the --tls* options, $DOCKER_TLS_VERIFY and $DOCKER_CERT_PATH), else a context
(--context, $DOCKER_CONTEXT, or the current context in the docker CLI's config.json) with its own endpoint and
TLS material, else the default socket. Also the config file's saved --format defaults (psFormat, ...)."""
from __future__ import annotations

import json
import os
import sys
from typing import Any, NamedTuple

from cli.pyengine import contextstore
from cli.pyengine.api import CLIError, TLSSettings
from cli.pyengine.contextstore import config_dir

DEFAULT_HOST = "unix:///run/pyengine/engine.sock"


class TLSOptions(NamedTuple):
    """The global --tls, --tlsverify, --tlscacert, --tlscert and --tlskey options (None: not given)."""
    tls: bool = False
    verify: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


class Endpoint(NamedTuple):
    host: str
    tls: TLSSettings | None = None


def _config() -> dict[str, Any]:
    """The docker CLI's config file; one it cannot read is warned about and ignored, as docker does."""
    path = os.path.join(config_dir(), "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            loaded = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        print(f"WARNING: Error loading config file: {path}: {e}", file=sys.stderr)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def config_value(key: str) -> Any:
    return _config().get(key)


def default_host() -> str:
    """The `default` context's host: the environment's, else the default socket."""
    for variable in ("PYENGINE_HOST", "DOCKER_HOST"):
        if os.environ.get(variable):
            return os.environ[variable]
    return DEFAULT_HOST


def option_tls(options: TLSOptions) -> TLSSettings | None:
    """The docker CLI's rules: --tlsverify or $DOCKER_TLS_VERIFY turn TLS on and verification with it, --tls
    or $DOCKER_TLS only TLS; files not named come from $DOCKER_CERT_PATH (else the config directory), the client
    certificate and key only if they are there."""
    verify = options.verify or bool(os.environ.get("DOCKER_TLS_VERIFY"))
    if not (options.tls or verify or os.environ.get("DOCKER_TLS")):
        return None
    directory = os.environ.get("DOCKER_CERT_PATH") or config_dir()

    def default(given: str | None, file: str) -> str | None:
        path = os.path.join(directory, file)
        return given if given else path if os.path.exists(path) else None

    return TLSSettings(ca=options.ca or os.path.join(directory, "ca.pem"), cert=default(options.cert, "cert.pem"),
                       key=default(options.key, "key.pem"), verify=verify)


def context_endpoint(name: str, options: TLSOptions) -> Endpoint:
    """A context's docker endpoint, with its TLS material and SkipTLSVerify."""
    if name == "default":
        return Endpoint(default_host(), option_tls(options))
    try:
        endpoint = contextstore.docker_endpoint(contextstore.load(name))
    except CLIError as e:
        raise CLIError(f"Failed to initialize: unable to resolve docker endpoint: {e.message}") from None
    host = endpoint.get("Host")
    if not host:
        raise CLIError(f'Failed to initialize: unable to resolve docker endpoint: context "{name}" has no docker '
                       "endpoint")
    files = contextstore.tls_files(name)
    skip = bool(endpoint.get("SkipTLSVerify"))
    tls = None
    if files or skip:
        tls = TLSSettings(ca=files.get("ca.pem"), cert=files.get("cert.pem"), key=files.get("key.pem"),
                          verify=not skip)
    return Endpoint(str(host), tls)


def current_context() -> str:
    """The context in use when no host is given: $DOCKER_CONTEXT, else config.json's currentContext."""
    return os.environ.get("DOCKER_CONTEXT") or config_value("currentContext") or "default"


def context_in_use(given: str | None) -> str:
    """The context as the docker CLI names it: --context, else `default` when the environment gives a host,
    else $DOCKER_CONTEXT or config.json's currentContext."""
    if given:
        return given
    if os.environ.get("PYENGINE_HOST") or os.environ.get("DOCKER_HOST"):
        return contextstore.DEFAULT
    return current_context()


def endpoint(host: str | None, context: str | None, options: TLSOptions = TLSOptions()) -> Endpoint:
    if host and context:
        raise CLIError("conflicting options: cannot specify both --host and --context", 125)
    if host:
        return Endpoint(host, option_tls(options))
    if context:
        return context_endpoint(context, options)
    if os.environ.get("PYENGINE_HOST") or os.environ.get("DOCKER_HOST"):
        return Endpoint(default_host(), option_tls(options))
    return context_endpoint(current_context(), options)
