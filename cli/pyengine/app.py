"""The Typer application every command module registers on, and the global options."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import json
import os
import stat
import sys
from typing import Annotated, Any, Callable

import typer

from cli.pyengine import clilog, hosts
from cli.pyengine.api import CLIError, Engine, version_key
from cli.pyengine.formatting import Template

app = typer.Typer(name="pyengine", help="A docker-like CLI for pyengined.", no_args_is_help=True,
                  add_completion=True, pretty_exceptions_enable=False)
system_app = typer.Typer(help="Manage pyengine.", no_args_is_help=True)
network_app = typer.Typer(help="Manage networks.", no_args_is_help=True)
volume_app = typer.Typer(help="Manage volumes.", no_args_is_help=True)
app.add_typer(system_app, name="system")
app.add_typer(network_app, name="network")
app.add_typer(volume_app, name="volume")

_selected: dict[str, str | None] = {"host": None, "context": None}
_tls: list[hosts.TLSOptions] = [hosts.TLSOptions()]
_engine: list[Engine] = []


def _print_version(given: bool) -> None:
    if given:
        from importlib.metadata import version as package_version

        print(f"pyengine version {package_version('pyengine')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    config: Annotated[str | None, typer.Option(
        "--config", help="Location of client config files (default $DOCKER_CONFIG, else ~/.docker).")] = None,
    debug: Annotated[bool, typer.Option("-D", "--debug", help="Enable debug mode (log level debug).")] = False,
    log_level: Annotated[str, typer.Option(
        "-l", "--log-level", help='Set the logging level ("debug", "info", "warn", "error", "fatal").')] = "info",
    version: Annotated[bool, typer.Option("-v", "--version", help="Print version information and quit.",
                                          callback=_print_version, is_eager=True)] = False,
    host: Annotated[str | None, typer.Option(
        "-H", "--host", help="Daemon socket to connect to (unix:///path or tcp://host:port); else $PYENGINE_HOST, "
                             "$DOCKER_HOST, the docker CLI's current context, unix:///run/pyengine/engine.sock.")]
    = None,
    context: Annotated[str | None, typer.Option(
        "-c", "--context", help="A docker CLI context to use (overrides $DOCKER_HOST and the current context).")]
    = None,
    tls: Annotated[bool, typer.Option("--tls", help="Use TLS; implied by --tlsverify.")] = False,
    tlsverify: Annotated[bool, typer.Option("--tlsverify", help="Use TLS and verify the remote "
                                                                "(also with $DOCKER_TLS_VERIFY).")] = False,
    tlscacert: Annotated[str | None, typer.Option(
        "--tlscacert", help="Trust certs signed only by this CA (default $DOCKER_CERT_PATH/ca.pem, "
                            "else ~/.docker/ca.pem).")] = None,
    tlscert: Annotated[str | None, typer.Option(
        "--tlscert", help="Path to TLS certificate file (default $DOCKER_CERT_PATH/cert.pem, else "
                          "~/.docker/cert.pem).")] = None,
    tlskey: Annotated[str | None, typer.Option(
        "--tlskey", help="Path to TLS key file (default $DOCKER_CERT_PATH/key.pem, else ~/.docker/key.pem).")]
    = None,
) -> None:
    if config:
        # Read by every place the docker CLI's config directory is looked for, as docker's --config sets it.
        os.environ["DOCKER_CONFIG"] = config
    try:
        clilog.set_level("debug" if debug else log_level)
    except ValueError as e:
        raise CLIError(str(e)) from None
    _selected.update(host=host, context=context)
    _tls[0] = hosts.TLSOptions(tls=tls, verify=tlsverify, ca=tlscacert, cert=tlscert, key=tlskey)


def selected_context() -> str | None:
    """The --context given, if any."""
    return _selected["context"]


def engine() -> Engine:
    """The daemon's client, made once per command (its API version is negotiated on first use)."""
    if not _engine:
        _engine.append(Engine(*hosts.endpoint(_selected["host"], _selected["context"], _tls[0])))
    return _engine[0]


def require_api(flag: str, minimum: str) -> None:
    """A flag the docker CLI checks against the API version spoken before using it."""
    spoken = engine().version
    if version_key(spoken) < version_key(minimum):
        raise CLIError(f'"{flag}" requires API version {minimum}, but the Docker daemon API version is {spoken}')


def check_output(path: str, action: str) -> None:
    """docker's check of an --output file before the daemon is asked for anything (`action`: "save image")."""
    directory = os.path.dirname(os.path.normpath(path))
    if directory not in ("", "."):
        try:
            mode = os.stat(directory).st_mode
        except OSError as e:
            raise CLIError(f"failed to {action}: invalid output path: stat {directory}: "
                           f"{os.strerror(e.errno or 0).lower()}") from None
        if not stat.S_ISDIR(mode):
            raise CLIError(f"failed to {action}: invalid output path: stat {directory}: not a directory")
    if os.path.isdir(path):
        raise CLIError(f"failed to {action}: cannot write to a directory")


def config_format(key: str) -> str | None:
    """A default --format saved in the docker CLI's config file (psFormat, imagesFormat, ...)."""
    value = hosts.config_value(key)
    return value if isinstance(value, str) and value else None


def for_each(targets: list[str], action: Callable[[str], None], summary: str = "") -> None:
    """docker's multi-target commands: report each failure, carry on, exit 1 if any failed (after a last
    `Error: SUMMARY: the failed targets` line where docker has one)."""
    failed = []
    for target in targets:
        try:
            action(target)
        except CLIError as e:
            print(e.message, file=sys.stderr)
            failed.append(target)
    if failed:
        if summary:
            print(f"Error: {summary}: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


def inspect_each(names: list[str], get: Callable[[str], Any], format_: str | None) -> None:
    """docker's inspect commands: what was found (as JSON, or each through --format), exit 1 if anything was not."""
    found, failed = [], False
    for name in names:
        try:
            found.append(get(name))
        except CLIError as e:
            print(e.message, file=sys.stderr)
            failed = True
    if format_ == "json":
        # docker's JSON inspector: the objects as the daemon sent them, compacted into one array.
        print(json.dumps(found, ensure_ascii=False, separators=(",", ":")))
    elif format_:
        # An object the template fails on is reported, and when nothing rendered the output is one empty line.
        template = Template(format_, missing="error", verbatim=True)
        rendered = []
        for obj in found:
            try:
                rendered.append(template.render_inspected(obj) + "\n")
            except CLIError as e:
                print(e.message, file=sys.stderr)
                failed = True
        print("".join(rendered) or "\n", end="")
    else:
        print(json.dumps(found, indent=4, ensure_ascii=False))
    if failed:
        raise SystemExit(1)


def key_values(items: list[str] | None) -> dict[str, str]:
    """Repeated KEY=VALUE options (--label, --opt) as a map; a bare KEY has the empty value."""
    return dict((k, v) for k, _, v in (item.partition("=") for item in items or []))


def no_content_trust(disabled: bool) -> None:
    """--disable-content-trust=false asks for signed images only; this CLI has no content trust to give."""
    if not disabled:
        raise CLIError("--disable-content-trust=false is not supported: this CLI does no content trust", 125)


def confirm(warning: str) -> bool:
    """docker's prompt before pruning: the question on stdout, and only y (or Y) is a yes."""
    print(f"{warning} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline().split()
    return bool(answer) and answer[0].lower() == "y"
