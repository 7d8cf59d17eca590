"""`pyctr images push REMOTE [LOCAL]`, as ctr's: the local image (REMOTE itself by default) sent to REMOTE."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.pyctr import output
from runtime.client import Client, RuntimeError_


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("remote", help="where to push: host/repository[:tag]")
    p.add_argument("local", nargs="?", help="the local image (default: REMOTE)")
    p.add_argument("--plain-http", action="store_true", help="use http instead of https")
    p.add_argument("--platform", help="push only this os/arch manifest of an index")
    p.add_argument("-u", "--user", help="USER[:PASSWORD] for the registry")


async def push(c: Client, a: argparse.Namespace) -> dict[str, Any]:
    creds = output.parse_user(a.user) if a.user else None
    renderer = output.PullRenderer(sys.stdout)
    try:
        async for ev in c.push(a.local or a.remote, a.remote, plain_http=a.plain_http, credentials=creds,
                               platform=a.platform):
            if ev.get("status") == "complete":
                return ev
            renderer.update(ev)
    finally:
        renderer.close()
    raise RuntimeError_("push ended without completing")
