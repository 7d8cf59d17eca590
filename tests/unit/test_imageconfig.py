"""The client-side merge of an image's config into a container's process, as `ctr run` makes it."""
from __future__ import annotations

from typing import Any

from runtime.client.imageconfig import process_from_image

CONFIG: dict[str, Any] = {
    "architecture": "amd64",
    "config": {"Entrypoint": ["/entry.sh"], "Cmd": ["serve", "--port", "80"], "Env": ["PATH=/opt/bin", "A=1"],
               "WorkingDir": "/srv", "User": "www"},
}


def test_the_images_process() -> None:
    assert process_from_image(CONFIG) == {"args": ["/entry.sh", "serve", "--port", "80"],
                                          "env": ["PATH=/opt/bin", "A=1"], "cwd": "/srv", "user": "www"}


def test_args_replace_entrypoint_and_cmd_and_the_rest_is_given_over_the_image() -> None:
    p = process_from_image(CONFIG, ["sh", "-c", "true"], env=["A=2"], cwd="/tmp", user="0:0")
    assert p == {"args": ["sh", "-c", "true"], "env": ["PATH=/opt/bin", "A=1", "A=2"], "cwd": "/tmp", "user": "0:0"}
    assert process_from_image(CONFIG, user="")["user"] == ""  # given, even empty: root, not the image's


def test_an_image_without_a_config_leaves_everything_to_the_runtime() -> None:
    assert process_from_image({"architecture": "amd64"}) == {"args": [], "env": [], "cwd": None, "user": None}
    empty = {"config": {"Entrypoint": None, "Cmd": None, "Env": None, "WorkingDir": "", "User": ""}}
    assert process_from_image(empty) == {"args": [], "env": [], "cwd": None, "user": None}
