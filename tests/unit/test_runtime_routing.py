"""The runtime API's routing layer (runtime/api/routing.py) against what FastAPI did for the same declarations:
query parsing, `{name:path}` parameters, bodies, statuses, error bodies, streams, and the OpenAPI document."""
from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, Field

from runtime.api import context, errors
from runtime.api.openapi import document
from runtime.api.routing import SERVICES, STREAMS, Route, Router, Stream, handler
from runtime.errors import NotFound
from runtime.services import Services

router = Router("/things", tags=("things",))


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int = 0
    tags: dict[str, str] = Field(default_factory=dict)


class Detailed(Thing):
    secret: str = "kept inside"


@router.get("/{key:path}/size")
async def size(key: str, s: Services, big: bool = False, level: Annotated[int, Field(ge=0)] = 1) -> dict[str, Any]:
    return {"key": key, "big": big, "level": level}


@router.get("/{key:path}")
async def get(key: str, s: Services, tag: tuple[str, ...] = (), name: str | None = None) -> Thing:
    if key == "missing":
        raise NotFound(f"thing {key} not found")
    return Detailed(name=name or key, tags={t: "1" for t in tag})


@router.post("", status=201)
async def create(body: Thing, s: Services) -> Thing:
    return body


@router.delete("/{key:path}")
async def remove(key: str, s: Services) -> None:
    return None


@router.post("/stream")
async def stream(s: Services) -> Stream:
    async def chunks() -> AsyncGenerator[bytes, None]:
        for i in range(3):
            yield f"{i}\n".encode()

    return Stream(chunks(), "application/x-ndjson")


def _routes() -> list[Route]:
    return router.declared("/v1")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[context.middleware, errors.middleware])
    app[SERVICES] = None  # type: ignore[assignment]
    app[STREAMS] = set()
    for route in _routes():
        app.router.add_route(route.method, route.pattern, handler(route))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_path_parameters_keep_their_slashes(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/v1/things/a/b%2Fc/size")
    assert resp.status == 200
    assert (await resp.json())["key"] == "a/b/c"
    assert (await (await client.get("/v1/things/x/y")).json())["name"] == "x/y"


@pytest.mark.parametrize("value, parsed", [("true", True), ("1", True), ("yes", True), ("false", False),
                                           ("0", False), ("off", False)])
async def test_bool_queries_read_as_fastapi_read_them(client: TestClient[web.Request, web.Application], value: str,
                                                      parsed: bool) -> None:
    assert (await (await client.get(f"/v1/things/k/size?big={value}")).json())["big"] is parsed


async def test_bad_queries_are_400_with_the_error_body(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/v1/things/k/size?big=maybe&level=-1")
    assert resp.status == 400
    message = (await resp.json())["error"]["message"]
    assert message.startswith("invalid request: query.big: Input should be a valid boolean")
    assert "query.level: Input should be greater than or equal to 0" in message


async def test_repeated_queries_and_defaults(client: TestClient[web.Request, web.Application]) -> None:
    body = await (await client.get("/v1/things/k?tag=a&tag=b&name=one&name=two")).json()
    # A list takes every value, a scalar the last (Starlette's mapping); the response model's fields only.
    assert body == {"name": "two", "size": 0, "tags": {"a": "1", "b": "1"}}
    assert (await (await client.get("/v1/things/k/size")).json()) == {"key": "k", "big": False, "level": 1}


async def test_bodies_statuses_and_errors(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/v1/things", data=b'{"name": "n", "size": "3"}')
    assert resp.status == 201 and await resp.read() == b'{"name":"n","size":3,"tags":{}}'
    resp = await client.post("/v1/things", data=b'{"size": []}')
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == \
        "invalid request: name: Field required; size: Input should be a valid integer"
    resp = await client.post("/v1/things", data=b"{bad")
    assert (resp.status, (await resp.json())["error"]["message"]) == (400, "invalid request: 1: JSON decode error")
    resp = await client.post("/v1/things")
    assert (resp.status, (await resp.json())["error"]["message"]) == (400, "invalid request: Field required")
    resp = await client.delete("/v1/things/a/b")
    assert resp.status == 204 and await resp.read() == b""
    resp = await client.get("/v1/things/missing")
    assert (resp.status, await resp.json()) == (404, {"error": {"code": "not_found",
                                                                "message": "thing missing not found"}})


async def test_unknown_paths_and_methods(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/v1/nowhere")
    assert (resp.status, await resp.json()) == (404, {"error": {"code": "not_found", "message": "Not Found"}})
    resp = await client.patch("/v1/things")
    assert resp.status == 405
    assert await resp.json() == {"error": {"code": "invalid_argument", "message": "Method Not Allowed"}}


async def test_a_bad_namespace_is_refused_at_the_edge(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/v1/things/k", headers={"X-Pyengine-Namespace": "no spaces"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_argument"


async def test_streams_are_written_as_they_come(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/v1/things/stream")
    assert resp.status == 200 and resp.content_type == "application/x-ndjson"
    assert await resp.read() == b"0\n1\n2\n"


def test_the_openapi_document_comes_from_the_declarations() -> None:
    doc = document(_routes(), "t", "1", "d")
    op = doc["paths"]["/v1/things/{key}/size"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in op["parameters"]] == \
        [("key", "path", True), ("big", "query", False), ("level", "query", False)]
    create_op = doc["paths"]["/v1/things"]["post"]
    assert create_op["requestBody"]["required"] is True
    assert "201" in create_op["responses"] and "204" in doc["paths"]["/v1/things/{key}"]["delete"]["responses"]
    assert set(doc["components"]["schemas"]) >= {"Thing", "Error"}
