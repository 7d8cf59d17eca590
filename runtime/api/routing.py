"""Declared routes on aiohttp.web: a handler's signature says what the request carries.

A handler's parameters are read from its annotations: names in the path template are path parameters
(strings); a pydantic model (or `Model | None`) is the JSON body; `Services` is the daemon's services;
`web.Request` is the raw request (a streamed upload); anything else is a query parameter, validated by
pydantic as FastAPI did (lax: "true"/"1"/"yes" are true, a list is the repeated parameter). The return
annotation is the response model, dumped by alias in JSON mode; `None` is a 204 with no body, a `Stream`
is written out as it comes. The same declarations make the OpenAPI document (runtime/api/openapi.py).
"""
from __future__ import annotations

import asyncio
import inspect
import json
import types
import typing
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, Union

import pydantic
from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from runtime import errors
from runtime.api.errors import StreamBroken
from runtime.namespaces import require_namespace
from runtime.services import Services

SERVICES = web.AppKey("services", Services)
# The tasks writing streams now (events, progress, tars): a stop waits for them a while, then cuts them.
STREAMS = web.AppKey("streams", set[asyncio.Task[Any]])
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
_JSON = "application/json"


class Stream:
    """A streamed answer: each chunk written as it comes; a client that goes away stops the source."""

    def __init__(self, chunks: AsyncGenerator[bytes, None], media_type: str,
                 headers: Mapping[str, str] | None = None) -> None:
        self.chunks = chunks
        self.media_type = media_type
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Body:
    param: str
    adapter: TypeAdapter[Any]
    required: bool


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # the OpenAPI form: /v1/snapshots/{snapshotter}/{key}
    pattern: str  # aiohttp's: /v1/snapshots/{snapshotter}/{key:.*}
    handler: Callable[..., Awaitable[Any]]
    status: int
    tags: tuple[str, ...]
    path_params: tuple[str, ...]
    query: type[BaseModel] | None
    multi: frozenset[str]  # query parameters that are lists (repeated in the query string)
    body: Body | None
    response: TypeAdapter[Any] | None  # None: a 204, a Stream or a web response
    request_param: str | None
    services_param: str | None
    writes: bool


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_model(tp: Any) -> bool:
    tp = _strip_optional(tp)
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _is_list(tp: Any) -> bool:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return typing.get_origin(_strip_optional(tp)) in (list, tuple, set, frozenset)


def _passes_through(tp: Any) -> bool:
    """Return types the layer does not serialise: streams and aiohttp's own responses."""
    return inspect.isclass(tp) and issubclass(tp, (Stream, web.StreamResponse))


def declare(method: str, path: str, handler: Callable[..., Awaitable[Any]], status: int, tags: tuple[str, ...],
            writes: bool) -> Route:
    hints = typing.get_type_hints(handler, include_extras=True)
    path_params = tuple(p.split(":", 1)[0] for p in _template_params(path))
    query: dict[str, Any] = {}
    multi: set[str] = set()
    body: Body | None = None
    request_param = services_param = None
    for name, param in inspect.signature(handler).parameters.items():
        tp = hints[name]
        if tp is web.Request:
            request_param = name
        elif tp is Services:
            services_param = name
        elif name in path_params:
            continue
        elif _is_model(tp):
            required = param.default is inspect.Parameter.empty
            body = Body(name, TypeAdapter(tp), required)
        else:
            default = ... if param.default is inspect.Parameter.empty else param.default
            query[name] = (tp, default)
            if _is_list(tp):
                multi.add(name)
    returns = hints.get("return", Any)
    response = None if returns is type(None) or _passes_through(returns) else TypeAdapter(returns)
    query_model = pydantic.create_model(f"Query_{handler.__name__}", **query) if query else None
    return Route(method=method, path=_openapi_path(path), pattern=_aiohttp_path(path), handler=handler,
                 status=204 if returns is type(None) else status, tags=tags, path_params=path_params,
                 query=query_model, multi=frozenset(multi), body=body, response=response,
                 request_param=request_param, services_param=services_param, writes=writes)


def _template_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _openapi_path(path: str) -> str:
    for p in _template_params(path):
        path = path.replace("{" + p + "}", "{" + p.split(":", 1)[0] + "}")
    return path


def _aiohttp_path(path: str) -> str:
    """Starlette's `{name:path}` (slashes allowed) in aiohttp's regex form."""
    for p in _template_params(path):
        if p.endswith(":path"):
            path = path.replace("{" + p + "}", "{" + p[:-len(":path")] + ":.*}")
    return path


class Router:
    """Routes under one prefix, registered in declaration order (the first that matches serves)."""

    def __init__(self, prefix: str = "", tags: tuple[str, ...] = ()) -> None:
        self.prefix = prefix
        self.tags = tags
        self.routes: list[tuple[str, str, Callable[..., Awaitable[Any]], int, bool]] = []

    def _add(self, method: str, path: str, status: int, writes: bool) -> Callable[[F], F]:
        def register(handler: F) -> F:
            self.routes.append((method, self.prefix + path, handler, status, writes))
            return handler
        return register

    def get(self, path: str, *, status: int = 200) -> Callable[[F], F]:
        return self._add("GET", path, status, False)

    def post(self, path: str, *, status: int = 200, writes: bool = False) -> Callable[[F], F]:
        return self._add("POST", path, status, writes)

    def put(self, path: str, *, status: int = 200, writes: bool = False) -> Callable[[F], F]:
        return self._add("PUT", path, status, writes)

    def delete(self, path: str, *, status: int = 200) -> Callable[[F], F]:
        return self._add("DELETE", path, status, False)

    def declared(self, prefix: str) -> list[Route]:
        return [declare(method, prefix + path, handler, status, self.tags, writes)
                for method, path, handler, status, writes in self.routes]


def _validation_error(e: pydantic.ValidationError, where: str = "") -> errors.InvalidArgument:
    """FastAPI's wording: `loc: msg` for each error, the body's fields without a prefix."""
    parts = []
    for err in e.errors(include_url=False):
        loc = ".".join(str(x) for x in (where, *err["loc"]) if x != "")
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return errors.InvalidArgument("invalid request: " + "; ".join(parts))


async def _arguments(route: Route, request: web.Request) -> dict[str, Any]:
    kwargs: dict[str, Any] = {name: request.match_info[name] for name in route.path_params}
    if route.query is not None:
        given: dict[str, Any] = {}
        for name in route.query.model_fields:
            values = request.query.getall(name, [])
            if values:
                # A repeated scalar parameter is its last value, as Starlette's query mapping has it.
                given[name] = values if name in route.multi else values[-1]
        try:
            kwargs.update(route.query.model_validate(given).__dict__)
        except pydantic.ValidationError as e:
            raise _validation_error(e, "query") from None
    if route.body is not None:
        raw = await request.read()
        if not raw:
            if route.body.required:
                raise errors.InvalidArgument("invalid request: Field required")
            kwargs[route.body.param] = None
        else:
            try:
                # Parsed first, then validated: the messages clients have seen from FastAPI.
                kwargs[route.body.param] = route.body.adapter.validate_python(json.loads(raw))
            except pydantic.ValidationError as e:
                raise _validation_error(e) from None
            except json.JSONDecodeError as e:
                raise errors.InvalidArgument(f"invalid request: {e.pos}: JSON decode error") from None
            except UnicodeDecodeError:
                raise errors.InvalidArgument("invalid request: the body is not UTF-8") from None
    if route.request_param:
        kwargs[route.request_param] = request
    if route.services_param:
        kwargs[route.services_param] = request.app[SERVICES]
    return kwargs


def _json(route: Route, value: Any) -> web.Response:
    assert route.response is not None
    value = route.response.validate_python(value, from_attributes=True)
    return web.Response(body=route.response.dump_json(value, by_alias=True), status=route.status,
                        content_type=_JSON)


async def _run_to_end(work: Awaitable[Any]) -> Any:
    """The handler's work, finished even if the client goes (aiohttp then cancels the request's task): a
    half-done create would leave what it made behind. Only the writing of a stream stops with the client."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise


async def _send(request: web.Request, stream: Stream) -> web.StreamResponse:
    """Headers first (a subscriber knows it is live), then the chunks as they come. aiohttp cancels this when
    the client goes (handler_cancellation), which closes the source at once."""
    response = web.StreamResponse(headers=stream.headers)
    response.content_type = stream.media_type
    task = asyncio.current_task()
    assert task is not None
    request.app[STREAMS].add(task)
    try:
        await response.prepare(request)
        async for chunk in stream.chunks:
            await response.write(chunk)
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away; what it missed is its own
    except Exception as e:
        raise StreamBroken(f"streaming {request.method} {request.path} failed: {type(e).__name__}: {e}") from e
    finally:
        request.app[STREAMS].discard(task)
        await stream.chunks.aclose()
    return response


def cut_streams_after(grace: float) -> Callable[[web.Application], Awaitable[None]]:
    """An on_shutdown hook: streams get `grace` seconds to end, then are cut (an events stream never ends)."""
    async def cut(app: web.Application) -> None:
        if streams := app[STREAMS].copy():
            _, pending = await asyncio.wait(streams, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    return cut


def handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        async def work() -> Any:
            kwargs = await _arguments(route, request)
            if route.writes:
                await request.app[SERVICES].namespaces.ensure(require_namespace())
            return await route.handler(**kwargs)

        result = await _run_to_end(work())
        if isinstance(result, Stream):
            return await _send(request, result)
        if isinstance(result, web.StreamResponse):
            return result  # a file, sent by aiohttp (sendfile) after the middlewares
        if route.response is None:
            return web.Response(status=route.status)
        return _json(route, result)

    return handle
