"""What a container's log options add to its lines: the tag and the labels and env vars they name."""
from __future__ import annotations

import re
from typing import Any, Protocol

from engine.errors import InvalidArgument

_TAG_FIELDS = {"{{.ID}}", "{{.FullID}}", "{{.Name}}", "{{.ImageID}}", "{{.ImageFullID}}", "{{.ImageName}}",
               "{{.DaemonName}}"}


class Tagged(Protocol):
    id: str
    name: str
    image: str
    image_id: str
    config: dict[str, Any]


def extra(c: Tagged, options: dict[str, str]) -> dict[str, str]:
    """The labels and env vars that `labels`, `labels-regex`, `env` and `env-regex` name."""
    out: dict[str, str] = {}
    labels = c.config.get("Labels") or {}
    wanted = {k for k in options.get("labels", "").split(",") if k}
    pattern = options.get("labels-regex")
    for key, value in labels.items():
        if key in wanted or (pattern and re.search(pattern, key)):
            out[key] = value
    env = dict(e.split("=", 1) for e in c.config.get("Env") or [] if "=" in e)
    wanted = {k for k in options.get("env", "").split(",") if k}
    pattern = options.get("env-regex")
    for key, value in env.items():
        if key in wanted or (pattern and re.search(pattern, key)):
            out[key] = value
    return out


def attrs(c: Tagged, options: dict[str, str]) -> dict[str, str]:
    """json-file's `attrs`: the labels and env vars the options name, and the tag."""
    out = extra(c, options)
    if "tag" in options:
        out["tag"] = render_tag(options["tag"], c)
    return out


def render_tag(template: str, c: Tagged) -> str:
    values = {"{{.ID}}": c.id[:12], "{{.FullID}}": c.id, "{{.Name}}": c.name, "{{.ImageID}}": _short(c.image_id),
              "{{.ImageFullID}}": c.image_id, "{{.ImageName}}": c.image, "{{.DaemonName}}": "docker"}
    for field in re.findall(r"{{[^}]*}}", template):
        if field not in _TAG_FIELDS:
            raise InvalidArgument(f"log tag {template!r}: {field} is not a field this engine fills "
                                  f"(use {', '.join(sorted(_TAG_FIELDS))})")
    for field, value in values.items():
        template = template.replace(field, value)
    return template


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
