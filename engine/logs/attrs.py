"""What a container's log options add to its lines: the tag and the labels and env vars they name."""
from __future__ import annotations

import re
from typing import Any, Protocol

from engine.errors import InvalidArgument

# A tag template's actions: `{{.Field}}` (Go's trim markers and spaces allowed); dockerd's logger.Info has
# these fields and methods. Pipelines and functions are not evaluated: a template using them is refused.
_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)
_FIELD = re.compile(r"\.([A-Za-z_]\w*)")
TAG_FIELDS = ("ID", "FullID", "Name", "ImageID", "ImageFullID", "ImageName", "DaemonName", "Command",
              "ContainerID", "ContainerName", "ContainerEntrypoint", "ContainerImageID", "ContainerImageName")


class Tagged(Protocol):
    id: str
    name: str
    image: str
    image_id: str
    config: dict[str, Any]

    @property
    def path(self) -> str: ...  # the process, for a tag's {{.Command}}

    @property
    def args(self) -> list[str]: ...


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


def check_tag(template: str) -> None:
    """At create, what dockerd refuses at the start (its words): an unclosed action, a field logger.Info lacks; and
    what this engine does not evaluate (pipelines, functions), by name."""
    rest = template
    while (start := rest.find("{{")) >= 0:
        end = rest.find("}}", start + 2)
        if end < 0:
            raise InvalidArgument("failed to initialize logging driver: template: log-tag:1: unclosed action")
        action = rest[start:end + 2]
        match = _ACTION.fullmatch(action)
        field = _FIELD.fullmatch(match.group(1)) if match else None
        if field is None:
            raise InvalidArgument(f"log tag {template!r}: {action} is not supported: this engine fills "
                                  f"{{{{.Field}}}} actions alone, of {', '.join(TAG_FIELDS)}")
        if field.group(1) not in TAG_FIELDS:
            raise InvalidArgument(f'failed to initialize logging driver: template: log-tag:1:2: executing "log-tag" '
                                  f"at <.{field.group(1)}>: can't evaluate field {field.group(1)} in type *logger.Info")
        rest = rest[end + 2:]


def render_tag(template: str, c: Tagged) -> str:
    """The tag, its actions filled (check_tag() passed it at create; an action it would refuse is left as is)."""
    values = {"ID": c.id[:12], "FullID": c.id, "Name": c.name, "ImageID": _short(c.image_id),
              "ImageFullID": c.image_id, "ImageName": c.image, "DaemonName": "docker",
              "Command": " ".join([c.path, *c.args]), "ContainerID": c.id, "ContainerName": "/" + c.name,
              "ContainerEntrypoint": c.path, "ContainerImageID": c.image_id, "ContainerImageName": c.image}

    def fill(m: re.Match[str]) -> str:
        field = _FIELD.fullmatch(m.group(1))
        return values.get(field.group(1), m.group(0)) if field else m.group(0)

    return _ACTION.sub(fill, template)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
