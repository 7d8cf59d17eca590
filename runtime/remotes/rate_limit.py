"""What to tell a user whose pull a registry refused with 429 Too Many Requests.

dockerd passes on the registry's own words ("toomanyrequests: You have reached your pull rate limit...")
and stops there. The answer's Retry-After header (seconds, or an HTTP date) says when asking again can
work; the transport has already waited for it as long as its retry policy allows, so the user gets the
moment itself, in seconds and as a UTC time.
"""
from __future__ import annotations

import time

from runtime.errors import Unavailable


def rate_limited(host: str, subject: str, detail: str, retry_after: float | None, now: float | None = None,
                 authenticated: bool = False) -> Unavailable:
    words = detail or "toomanyrequests: too many requests"
    if retry_after is None:
        when = "it sent no Retry-After: wait before pulling again"
    else:
        at = time.strftime("%H:%M:%S UTC", time.gmtime((time.time() if now is None else now) + retry_after))
        when = f"it asks to retry after {retry_after:.0f}s (at {at})"
    hint = "" if authenticated else "; anonymous pulls have lower limits: `docker login` may raise yours"
    return Unavailable(f"{words}: {host} rate-limits requests (HTTP 429) for {subject}; {when}{hint}")
