"""The tag list's pages: followed on the same registry, never to another host (the request carries credentials)."""
from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import InvalidArgument
from runtime.reference import parse
from runtime.remotes.hosts import Endpoint
from runtime.remotes.tags import list_tags


class _Content:
    def __init__(self, body: bytes) -> None:
        self._body = body

    async def iter_any(self) -> Any:
        yield self._body


class _Response:
    def __init__(self, body: bytes, link: str) -> None:
        self.content = _Content(body)
        self.headers = {"Link": link} if link else {}

    def release(self) -> None:
        pass


class _Transport:
    def __init__(self, pages: list[tuple[bytes, str]]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    async def send(self, method: str, endpoint: Endpoint, path: str, **_: Any) -> _Response:
        self.asked.append(path)
        return _Response(*self.pages.pop(0))


ENDPOINT = Endpoint(registry="reg.test:5000", base_url="http://reg.test:5000", is_mirror=False)


async def test_pages_are_followed_on_the_same_registry() -> None:
    transport = _Transport([(b'{"tags": ["a"]}', '</v2/x/tags/list?last=a&n=1>; rel="next"'),
                            (b'{"tags": ["b"]}', '<http://reg.test:5000/v2/x/tags/list?last=b>; rel="next"'),
                            (b'{"tags": ["c"]}', "")])
    tags = await list_tags(transport, ENDPOINT, parse("reg.test:5000/x"), None)  # type: ignore[arg-type]
    assert tags == ["a", "b", "c"]
    assert transport.asked[1] == "x/tags/list?last=a&n=1"


async def test_a_next_page_on_another_host_is_refused() -> None:
    transport = _Transport([(b'{"tags": ["a"]}', '<http://elsewhere.test/v2/x/tags/list>; rel="next"')])
    with pytest.raises(InvalidArgument, match="another host"):
        await list_tags(transport, ENDPOINT, parse("reg.test:5000/x"), None)  # type: ignore[arg-type]
