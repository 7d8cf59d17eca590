"""A repository's tags: the distribution API's tag list (GET /v2/<name>/tags/list), followed page by page.

A registry may answer in pages, naming the next one in a `Link: <...>; rel="next"` header (distribution's
pagination); each page is bounded, and so is their number.
"""
from __future__ import annotations

import json
import re

from runtime.errors import InvalidArgument
from runtime.reference import Reference
from runtime.remotes.auth import Credentials
from runtime.remotes.hosts import Endpoint
from runtime.remotes.transport import RegistryTransport, read_capped

MAX_PAGE = 4 * 1024 * 1024
MAX_PAGES = 1000
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


async def list_tags(transport: RegistryTransport, endpoint: Endpoint, ref: Reference,
                    credentials: Credentials | None) -> list[str]:
    subject = f"tags of {ref.name}"
    path = f"{ref.repository_path}/tags/list"
    tags: list[str] = []
    for _ in range(MAX_PAGES):
        resp = await transport.send("GET", endpoint, path, repository=ref.repository_path, subject=subject,
                                    credentials=credentials, not_found="name unknown")
        try:
            body, truncated = await read_capped(resp, MAX_PAGE)
            link = resp.headers.get("Link", "")
        finally:
            resp.release()
        if truncated:
            raise InvalidArgument(f"{subject} from {endpoint.host}: a page larger than {MAX_PAGE} bytes")
        try:
            doc = json.loads(body)
        except ValueError:
            raise InvalidArgument(f"{subject} from {endpoint.host}: not JSON") from None
        page = doc.get("tags") if isinstance(doc, dict) else None
        tags += [t for t in page or [] if isinstance(t, str)]
        found = _NEXT.search(link)
        if found is None:
            return tags
        # The next page's path from the registry's root ("/v2/<name>/tags/list?last=..."), or a full URL of the
        # same registry: the request carries its credentials, so another host is never asked.
        target = found.group(1)
        if "://" in target and not target.startswith(endpoint.url("")):
            raise InvalidArgument(f"{subject} from {endpoint.host}: the next page is on another host ({target})")
        path = target if "://" in target else target.removeprefix("/v2/").lstrip("/")
    raise InvalidArgument(f"{subject} from {endpoint.host}: more than {MAX_PAGES} pages")
