"""Turning registry HTTP failures into the runtime's typed errors."""
from __future__ import annotations

import json

from runtime.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RuntimeError_,
    Unauthenticated,
    Unavailable,
)
from runtime.remotes.rate_limit import rate_limited


def registry_error_message(body: bytes) -> str:
    """Human text from a registry/token-server error body (`{"errors": [...]}` or `details`)."""
    if not body:
        return ""
    try:
        doc = json.loads(body)
    except ValueError:
        text = body[:300].decode("utf-8", "replace").strip()
        return "" if text.startswith("<") else " ".join(text.split())  # skip HTML error pages
    parts: list[str] = []
    if isinstance(doc, dict):
        errors = doc.get("errors")
        if isinstance(errors, list):
            for err in errors:
                if not isinstance(err, dict):
                    continue
                code = str(err.get("code") or "").lower().replace("_", " ")
                message = str(err.get("message") or "")
                if code and message and message.lower() != code:
                    parts.append(f"{code}: {message}")
                elif code or message:
                    parts.append(message or code)
        for key in ("details", "detail", "error_description", "error", "message"):
            if not parts and isinstance(doc.get(key), str) and doc[key]:
                parts.append(doc[key])
    return "; ".join(parts)


def error_for_status(
    status: int,
    *,
    host: str,
    subject: str,
    body: bytes,
    authenticated: bool,
    not_found: str = "not found",
    retry_after: float | None = None,
) -> RuntimeError_:
    """The typed error for a final (non-retried) failing registry response.

    `subject` names what was asked for ("manifest docker.io/library/x:1");
    `not_found` is the fallback text for a 404 without an error body; `retry_after` is a 429's Retry-After.
    """
    detail = registry_error_message(body)
    suffix = f": {detail}" if detail else ""
    if status == 401:
        if authenticated:
            return Unauthenticated(f"authentication failed for {host}{suffix or ': unauthorized'}")
        return Unauthenticated(f"authentication required by {host} for {subject}{suffix}")
    if status == 403:
        return PermissionDenied(f"access to {subject} denied by {host}{suffix or ': forbidden'}")
    if status == 404:
        return NotFound(f"{subject} not found at {host}: {detail or not_found}")
    if status == 429:
        return rate_limited(host, subject, detail, retry_after, authenticated=authenticated)
    if status >= 500:
        return Unavailable(f"{host} answered HTTP {status} for {subject}{suffix}")
    if 400 <= status < 500:
        return InvalidArgument(f"{host} rejected the request for {subject} (HTTP {status}){suffix}")
    return Unavailable(f"unexpected HTTP {status} from {host} for {subject}{suffix}")
