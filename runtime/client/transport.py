"""The HTTP side of the runtime API client: requests, typed views of their bodies, NDJSON streams, downloads.

Area clients (runtime.client.client and its siblings) subclass Transport and add one method per endpoint.
"""
from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Self, TypeAlias, TypedDict, TypeVar, Unpack
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from runtime.client.errors import from_body
from runtime.client.http import ProtocolError, Response, UnixHTTP
from runtime.client.tracing import client_span
from runtime.errors import Internal, Unavailable
from runtime.wire import API_PREFIX, DEFAULT_NAMESPACE, LEASE_HEADER, NAMESPACE_HEADER

DEFAULT_ADDRESS = "/run/pyengine/runtime.sock"

_R = TypeVar("_R", bound=BaseModel)

# A query string: a mapping, or (name, value) pairs where a name repeats (the events' filters).
Params: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]]


class RequestOptions(TypedDict, total=False):
    """request()'s keyword arguments, as the typed helpers pass them through."""

    json_body: Any  # any JSON-serialisable value: each endpoint has its own request model
    params: Params | None
    namespace: str | None
    lease: str | None


class Transport:
    def __init__(self, address: str = DEFAULT_ADDRESS, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.address = address
        self.namespace = namespace
        self._http = UnixHTTP(address)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()

    def _headers(self, namespace: str | None, lease: str | None, has_body: bool) -> dict[str, str]:
        headers = {NAMESPACE_HEADER: namespace or self.namespace}
        if lease:
            headers[LEASE_HEADER] = lease
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    async def _send(self, method: str, path: str, json_body: Any, params: Params | None, namespace: str | None,
                    lease: str | None, raw: AsyncIterable[bytes] | None = None) -> Response:
        target = API_PREFIX + path + ("?" + urlencode(params) if params else "")
        body = raw if raw is not None else None if json_body is None else json.dumps(json_body).encode()
        headers = self._headers(namespace, lease, json_body is not None)
        try:
            with client_span(method, path, headers):
                return await self._http.request(method, target, headers, body)
        except (OSError, ProtocolError) as e:
            raise Unavailable(f"cannot reach pyruntimed at {self.address}: {e}") from None

    @staticmethod
    async def _raise(resp: Response) -> None:
        raw = await resp.read()
        try:
            body: object = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        raise from_body(resp.status, body)

    async def request(self, method: str, path: str, *, json_body: Any = None, params: Params | None = None,
                      namespace: str | None = None, lease: str | None = None) -> Any:
        """The decoded JSON body (None if empty), or the raw bytes of any other content type."""
        resp = await self._send(method, path, json_body, params, namespace, lease)
        if resp.status >= 400:
            await self._raise(resp)
        try:
            raw = await resp.read()
        except (OSError, ProtocolError) as e:
            raise Unavailable(f"lost pyruntimed at {self.address}: {e}") from None
        if resp.content_type == "application/json":
            return json.loads(raw) if raw else None
        return raw

    # Typed views of request() for endpoints whose response model fixes the body's shape: a body of
    # another shape comes from a daemon that does not speak this API, and says so here rather than as
    # a KeyError or TypeError in the caller.
    async def _object(self, method: str, path: str, **options: Unpack[RequestOptions]) -> dict[str, Any]:
        body = await self.request(method, path, **options)
        if not isinstance(body, dict):
            raise _unexpected(method, path, body, "an object")
        return body

    async def _objects(self, method: str, path: str, **options: Unpack[RequestOptions]) -> list[dict[str, Any]]:
        body = await self.request(method, path, **options)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise _unexpected(method, path, body, "a list of objects")
        return body

    async def _record(self, model: type[_R], method: str, path: str, **options: Unpack[RequestOptions]) -> _R:
        return _parse(model, method, path, await self._object(method, path, **options))

    async def _records(self, model: type[_R], method: str, path: str,
                       **options: Unpack[RequestOptions]) -> list[_R]:
        return [_parse(model, method, path, item) for item in await self._objects(method, path, **options)]

    async def _ints(self, method: str, path: str, **options: Unpack[RequestOptions]) -> list[int]:
        body = await self.request(method, path, **options)
        if not isinstance(body, list) or not all(isinstance(item, int) for item in body):
            raise _unexpected(method, path, body, "a list of integers")
        return body

    async def _blob(self, method: str, path: str, **options: Unpack[RequestOptions]) -> bytes:
        body = await self.request(method, path, **options)
        if not isinstance(body, bytes):
            raise _unexpected(method, path, body, "raw bytes")
        return body

    async def stream(self, method: str, path: str, *, json_body: Any = None, params: Params | None = None,
                     namespace: str | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """NDJSON lines; an error line is raised as the typed error it names."""
        resp = await self._send(method, path, json_body, params, namespace, None)
        if resp.status >= 400:
            await self._raise(resp)
        try:
            async for line in resp.lines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                if isinstance(obj, dict) and "error" in obj:
                    raise from_body(500, obj)
                yield obj
        except (OSError, ProtocolError) as e:
            raise Unavailable(f"lost pyruntimed at {self.address}: {e}") from None
        finally:
            resp.close()

    @asynccontextmanager
    async def _download(self, path: str, params: Params | None, namespace: str | None, *, method: str = "GET",
                        json_body: Any = None) -> AsyncIterator[tuple[Response, AsyncIterator[bytes]]]:
        """(the response, its body's bytes as they come), for the duration of the block."""
        resp = await self._send(method, path, json_body, params, namespace, None)
        try:
            if resp.status >= 400:
                await self._raise(resp)

            async def body() -> AsyncIterator[bytes]:
                try:
                    async for chunk in resp.chunks():
                        yield chunk
                except (OSError, ProtocolError) as e:
                    raise Unavailable(f"lost pyruntimed at {self.address}: {e}") from None

            yield resp, body()
        finally:
            resp.close()


def _parse(model: type[_R], method: str, path: str, body: dict[str, Any]) -> _R:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        raise Internal(f"runtime API answered {method} {path} with a body that is not a {model.__name__}: "
                       f"{e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None


def _unexpected(method: str, path: str, body: object, expected: str) -> Internal:
    return Internal(f"runtime API answered {method} {path} with {type(body).__name__}, not {expected}")
