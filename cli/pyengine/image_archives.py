"""Image archive commands: save and load, as docker's (a file written whole or not at all; load's messages)."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import json
import os
import sys
from typing import Annotated, BinaryIO, Optional
from urllib.parse import urlencode

import typer

from cli.pyengine.api import CLIError, chunks
from cli.pyengine.app import app, check_output, engine, require_api
from cli.pyengine.images import platform_json
from cli.pyengine.progress import check


@app.command()
def save(
    images: Annotated[list[str], typer.Argument(metavar="IMAGE...", help="Images to save (names, tags or IDs).")],
    output: Annotated[Optional[str], typer.Option("-o", "--output",
                                                  help="Write to a file, instead of STDOUT.")] = None,
    platform: Annotated[Optional[list[str]], typer.Option("--platform", help="Save only this platform (os/arch)."
                                                          )] = None,
) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    if platform:
        require_api("--platform", "1.48")
    if output is None and sys.stdout.isatty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if output is not None:
        check_output(output, "save image")
    path = "/images/get?" + urlencode([("names", name) for name in images]
                                      + [("platform", platform_json(p)) for p in platform or []])
    with engine().open("GET", path) as resp:
        if output is None:
            for chunk in chunks(resp):
                sys.stdout.buffer.write(chunk)
            return
        # Written beside the target and renamed at the end, as docker does: a failed save leaves no half archive.
        partial = os.path.join(os.path.dirname(os.path.abspath(output)), f".{os.path.basename(output)}.partial")
        try:
            with open(partial, "wb") as out:
                for chunk in chunks(resp):
                    out.write(chunk)
            os.replace(partial, output)
        except OSError as e:
            reason = os.strerror(e.errno or 0).lower()
            raise CLIError(f"failed to save image: {e.filename or output}: {reason}") from None
        finally:
            if os.path.exists(partial):
                os.unlink(partial)


@app.command()
def load(
    input: Annotated[Optional[str], typer.Option("-i", "--input",
                                                 help="Read from tar archive file, instead of STDIN.")] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Suppress the load output.")] = False,
    platform: Annotated[Optional[list[str]], typer.Option("--platform", help="Load only this platform (os/arch)."
                                                          )] = None,
) -> None:
    """Load an image from a tar archive or STDIN."""
    if platform:
        require_api("--platform", "1.48")
    if input is None and sys.stdin.isatty():
        raise CLIError("requested load from stdin, but stdin is empty")
    # Progress only makes sense on a terminal, as with docker.
    quiet = quiet or not sys.stdout.isatty()
    try:
        source: BinaryIO = open(input, "rb") if input is not None else sys.stdin.buffer
    except OSError as e:
        raise CLIError(f"open {input}: {os.strerror(e.errno or 0).lower()}") from None
    with source, engine().open("POST", "/images/load", {
            "quiet": "1" if quiet else "0", "platform": [platform_json(p) for p in platform or []] or None},
            body=source,
                               headers={"Content-Type": "application/x-tar"}) as resp:
        for line in resp:
            if not line.strip():
                continue
            message = json.loads(line)
            check(message)
            if "stream" in message:
                sys.stdout.write(message["stream"])
            elif message.get("status"):
                sys.stdout.write(f"{message.get('id', '')}: {message['status']} {message.get('progress', '')}\n")
