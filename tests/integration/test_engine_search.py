"""GET /images/search with the docker CLI and SDK: a registry with Docker Hub's v1 search API (a small stand-in
served here) and the fixture registry, which has none (dockerd 20.10 on this machine answered that one with a
500 "Unexpected status code 404" and refused bad limits and filters with the words checked below)."""
from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers

RESULTS = [
    {"name": "team/busybox", "description": "a busybox", "star_count": 7, "is_official": False,
     "is_automated": False},
    {"name": "busybox", "description": "the official one", "star_count": 3, "is_official": True,
     "is_automated": False},
    {"name": "auto/busybox", "description": "", "star_count": 1, "is_official": False, "is_automated": True},
]


class _Index(BaseHTTPRequestHandler):
    asked: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/v1/search":
            self.send_error(404)
            return
        query = urllib.parse.parse_qs(url.query)
        self.asked.append(query)
        n = int(query["n"][0])
        body = json.dumps({"num_results": len(RESULTS), "query": query["q"][0], "results": RESULTS[:n]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Index.asked = []
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_search_asks_the_index_the_term_names_and_filters_its_answer(engine, index, sdk):
    out = ok(engine, "search", "--format", "{{.Name}}:{{.StarCount}}:{{.IsOfficial}}", f"{index}/busybox")
    assert out.splitlines() == ["team/busybox:7:", "busybox:3:[OK]", "auto/busybox:1:"]
    assert _Index.asked[-1] == {"q": ["busybox"], "n": ["25"]}

    out = ok(engine, "search", "--format", "{{.Name}}", "--filter", "stars=2", "--filter", "is-official=false",
             "--limit", "5", f"{index}/busybox")
    assert out.splitlines() == ["team/busybox"]
    assert _Index.asked[-1] == {"q": ["busybox"], "n": ["5"]}

    found = sdk.images.search(f"{index}/busybox", limit=2)
    assert found == RESULTS[:2]
    status, _, body = curl(engine, "GET", "/v1.41/images/search?term=" + urllib.parse.quote(f"{index}/busybox")
                           + "&filters=" + urllib.parse.quote('{"is-automated":["true"]}'))
    assert (status, json.loads(body)) == (200, [RESULTS[2]])


def test_a_registry_without_the_search_api(engine, registry):
    out = cli(engine, "search", f"{registry.host}/busybox")
    assert out.returncode == 1
    assert out.stderr.startswith("Error response from daemon: Unexpected status code 404 ("), out.stderr
    status, ctype, body = curl(engine, "GET", f"/v1.41/images/search?term={registry.host}/busybox")
    assert (status, ctype) == (500, "application/json")
    assert json.loads(body)["message"].startswith("Unexpected status code 404")


@pytest.mark.parametrize("query, message", [
    ("limit=200", "Limit 200 is outside the range of [1, 100]"),
    ("limit=x", 'strconv.Atoi: parsing "x": invalid syntax'),
    ("filters=" + urllib.parse.quote('{"nope":{"x":true}}'), "Invalid filter 'nope'"),
    ("filters=" + urllib.parse.quote('{"stars":{"x":true}}'), "Invalid filter 'stars=x'"),
    ("filters=" + urllib.parse.quote('{"is-official":{"x":true}}'), "Invalid filter 'is-official=[x]'"),
])
def test_bad_limits_and_filters_are_400_in_dockerds_words(engine, index, query, message):
    status, _, body = curl(engine, "GET", f"/v1.41/images/search?term={index}/busybox&{query}")
    assert (status, json.loads(body)) == (400, {"message": message})
    assert _Index.asked == []
