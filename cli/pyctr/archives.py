"""pyctr images export / import: image archives (OCI layout, docker-archive) to and from files."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, BinaryIO, TypeVar

from runtime.client import Client

T = TypeVar("T")
Call = Callable[[argparse.Namespace, Callable[[Client], Awaitable[T]]], T]
_CHUNK = 1 << 20


def images_export(a: argparse.Namespace, call: Call[None]) -> None:
    if a.output == "-":
        _export_to_stdout(a, call)
        return

    async def go(c: Client) -> None:
        # Written beside the target and renamed at the end: a failed export leaves no half archive.
        partial = f"{a.output}.partial-{os.getpid()}"
        try:
            with open(partial, "wb") as out:
                async with c.export_images(a.refs, format=a.format, platform=a.platform) as chunks:
                    async for chunk in chunks:
                        await asyncio.to_thread(out.write, chunk)
            os.replace(partial, a.output)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

    call(a, go)


def _export_to_stdout(a: argparse.Namespace, call: Call[None]) -> None:
    """`-` is stdout, as for ctr."""
    async def go(c: Client) -> None:
        out = sys.stdout.buffer
        async with c.export_images(a.refs, format=a.format, platform=a.platform) as chunks:
            async for chunk in chunks:
                await asyncio.to_thread(out.write, chunk)
        out.flush()

    call(a, go)


async def _read(src: BinaryIO) -> AsyncIterator[bytes]:
    with src:
        while chunk := await asyncio.to_thread(src.read, _CHUNK):
            yield chunk


def images_import(a: argparse.Namespace, call: Call[Any]) -> None:
    try:
        src = open(a.input, "rb") if a.input != "-" else os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    except OSError as e:
        print(f"pyctr: open {a.input}: {e.strerror.lower() if e.strerror else e}", file=sys.stderr)
        raise SystemExit(1) from None
    images = call(a, lambda c: c.import_images(_read(src), snapshotter=a.snapshotter, unpack=not a.skip_unpack,
                                               platform=a.platform, all_platforms=a.all_platforms))
    for image in images:
        for name in image.names:
            print(f"{name}: {image.target.digest}")
        if not image.names:
            print(f"unnamed image {image.config} (no name in the archive: not kept)", file=sys.stderr)


def add_commands(im: Any, cmd: Callable[..., argparse.ArgumentParser], call: Call[Any]) -> None:
    p = cmd(im, ["export"], lambda a: images_export(a, call), "write images to an archive (tar)")
    p.add_argument("output", help="the archive to write, or - for stdout")
    p.add_argument("refs", nargs="+", help="image names")
    p.add_argument("--format", choices=["docker", "oci"], default="docker",
                   help="docker: an OCI layout with manifest.json (what docker load reads); oci: the layout only")
    p.add_argument("--platform", help="os/arch of the manifest taken from an index (default: this host's)")
    p = cmd(im, ["import"], lambda a: images_import(a, call), "import images from an archive (tar, tar.gz)")
    p.add_argument("input", help="the archive, or - for stdin")
    p.add_argument("--snapshotter")
    p.add_argument("--platform", help="os/arch of the manifest taken from an index (default: this host's)")
    p.add_argument("--all-platforms", action="store_true", help="keep every manifest of an index in the archive")
    p.add_argument("--skip-unpack", action="store_true")
