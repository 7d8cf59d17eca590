"""Registry commands: login, logout, push."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import base64
import getpass
import json
import sys
from typing import Annotated, Any

import typer

from cli.pyengine import credentials
from cli.pyengine.api import CLIError, path_quote
from cli.pyengine.app import app, engine, no_content_trust
from cli.pyengine.images import platform_json, split_reference
from cli.pyengine.progress import PullProgress, check


def _registry_auth(auth: dict[str, str] | None) -> dict[str, str]:
    # base64url of the JSON, as the docker CLI sends it; "{}" when not logged in.
    raw = json.dumps(auth or {}).encode()
    return {"X-Registry-Auth": base64.urlsafe_b64encode(raw).decode()}


def _host_of(name: str) -> str:
    first, sep, _ = name.partition("/")
    return first if sep and ("." in first or ":" in first or first == "localhost") else "docker.io"


@app.command()
def login(
    server: Annotated[str | None, typer.Argument(help="Registry (default: Docker Hub).")] = None,
    username: Annotated[str | None, typer.Option("-u", "--username", help="Username.")] = None,
    password: Annotated[str | None, typer.Option("-p", "--password", help="Password.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Take the password from stdin.")] = False,
) -> None:
    """Log in to a registry."""
    if password_stdin:
        if password is not None:
            raise CLIError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise CLIError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
    address = server or credentials.INDEX_SERVER
    if (not username or password is None) and not sys.stdin.isatty():
        raise CLIError("Error: Cannot perform an interactive login from a non TTY device")
    if not username:
        username = input("Username: ").strip()
    if password is None:
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise CLIError("Error: Non-null Username and Password Required")
    answer = engine().post("/auth", body={"username": username, "password": password, "serveraddress": address})
    path = credentials.store(address, username, password, answer.get("IdentityToken") or "")
    print(f"WARNING! Your credentials are stored unencrypted in '{path}'.", file=sys.stderr)
    print(answer.get("Status") or "Login Succeeded")


@app.command()
def logout(server: Annotated[str | None, typer.Argument(help="Registry (default: Docker Hub).")] = None) -> None:
    """Log out from a registry."""
    address = server or credentials.INDEX_SERVER
    # As docker: said whether or not there was a login to remove; a registry given is named by its host.
    shown = address if server is None else address.removeprefix("https://").removeprefix("http://").split("/")[0]
    print(f"Removing login credentials for {shown}")
    credentials.remove(address)


@app.command()
def push(
    name: Annotated[str, typer.Argument(help="NAME[:TAG]")],
    all_tags: Annotated[bool, typer.Option("-a", "--all-tags", help="Push all tags of the repository.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Suppress verbose output.")] = False,
    platform: Annotated[str | None, typer.Option("--platform", help="Push only this platform (os/arch).")] = None,
    disable_content_trust: Annotated[bool, typer.Option(
        "--disable-content-trust", help="Skip image signing (always: this CLI does no content trust).")] = True,
) -> None:
    """Upload an image to a registry."""
    no_content_trust(disable_content_trust)
    repo, tag = split_reference(name)
    if all_tags and tag:
        raise CLIError("tag can't be used with --all-tags/-a")
    if not all_tags and not tag:
        if not quiet:
            print("Using default tag: latest")
        tag = "latest"
    headers = _registry_auth(credentials.lookup(_host_of(repo)))
    progress = None if quiet else PullProgress(sys.stdout)
    pushed: list[dict[str, Any]] = []
    try:
        for message in engine().json_stream("POST", f"/images/{path_quote(repo)}/push", {
                "tag": tag or None, "platform": platform_json(platform)},
                                            headers=headers):
            if "aux" in message:
                pushed.append(message["aux"])
            elif progress is not None:
                progress.show(message)
            else:
                check(message)
    finally:
        if progress is not None:
            progress.close()
    if quiet:
        for aux in pushed:
            print(f"{repo}:{aux['Tag']}")
