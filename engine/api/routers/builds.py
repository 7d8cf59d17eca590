"""POST /build (the classic builder API the docker CLI uses without buildx, and the SDK always) and
POST /build/prune. A bad Dockerfile, target or option is a plain 400 before the stream starts; a
failure during the build is the stream's last message; a client that leaves cancels the build."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from engine.api import query
from engine.api.app import Router
from engine.api.streams import disconnected, json_line
from engine.api.responses import json_response
from engine.backend import Backend
from engine.builder import cache_prune
from engine.builder.options import parse_options, registry_auths
from engine.builder.progress import BuildProgress, StepFailed, failure
from engine.errors import EngineError, InvalidArgument, NotImplemented_
from runtime.client import RuntimeError_

log = logging.getLogger("engine.api.build")

_SPACE_OPTIONS = ("keep-storage", "reserved-space", "max-used-space", "min-free-space")


async def _cancel_when_gone(request: web.Request, build: asyncio.Task[None]) -> None:
    """The build stops once its client has gone, even while it writes nothing (a long RUN)."""
    await disconnected(request)
    if not build.done():
        log.info("build client went away: cancelling the build")
        build.cancel()


def register(r: Router, b: Backend) -> None:
    async def build(request: web.Request) -> web.StreamResponse:
        options = parse_options(request.query, experimental=b.config.experimental)
        auths = registry_auths(request.headers.get("X-Registry-Config"))
        builder = b.builder.get()
        context = await b.contexts.get().from_request(request)
        async with context:
            builder.plan(context, options)
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            progress = BuildProgress(options.quiet)

            async def run() -> None:
                try:
                    await builder.build(context, options, progress, auths)
                except (EngineError, RuntimeError_, StepFailed) as e:
                    # What the Dockerfile or the context made fail is the client's to read, not the daemon's error.
                    log.info("build failed: %s", e.message)
                    await progress.fail(failure(e))
                except Exception as e:
                    if isinstance(e, asyncio.CancelledError):
                        raise
                    log.exception("build failed")
                    await progress.fail(failure(e))
                finally:
                    progress.close()

            task = asyncio.create_task(run())
            watcher = asyncio.create_task(_cancel_when_gone(request, task))
            try:
                async for message in progress.messages():
                    await response.write(json_line(message))
                await task
            except (ConnectionResetError, asyncio.CancelledError):
                log.info("build client went away: cancelling the build")
                raise
            finally:
                watcher.cancel()
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            await response.write_eof()
            return response

    async def prune(request: web.Request) -> web.Response:
        q = request.query
        try:
            rule = cache_prune.parse(query.filters(q), {name: query.integer(q, name) for name in _SPACE_OPTIONS},
                                     everything=query.boolean(q, "all"))
        except InvalidArgument as e:
            raise InvalidArgument(f"failed to prune build cache: {e.message}") from None
        report = await b.build_cache.prune(rule)
        b.events.publish("builder", "prune", "", {"reclaimed": str(report.get("SpaceReclaimed") or 0)})
        return json_response(report)

    async def buildkit(request: web.Request) -> web.Response:
        # buildx's docker driver asks for these first: say why, not a bare 404.
        raise NotImplemented_(f"{request.path.rsplit('/', 1)[-1]}: BuildKit is not served by this daemon; it "
                              "builds with the classic builder (DOCKER_BUILDKIT=0)")

    r.add("POST", "/build", build)
    r.add("POST", "/session", buildkit)
    r.add("POST", "/grpc", buildkit)
    r.add("POST", "/build/prune", prune)
