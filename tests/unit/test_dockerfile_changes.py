"""`--change` for commit and import: the allowed instructions applied to an image's Config."""
from __future__ import annotations

from typing import Any

import pytest

from engine.builder.dockerfile import DockerfileError, apply_changes

BASE: dict[str, Any] = {"Env": ["PATH=/bin", "HOME=/root"], "Cmd": ["sh"], "WorkingDir": "/srv",
                        "Labels": {"a": "1"}}


def test_changes_apply_to_a_copy() -> None:
    out = apply_changes(BASE, [
        'CMD ["app", "--serve"]', "ENV MODE=prod HOME=/home/$MODE", "ENV X y z", "EXPOSE 80 8000-8001/udp",
        "LABEL b=2 \"c d\"='e f'", "ONBUILD RUN make", "USER ${MODE:-nobody}", "VOLUME /data /x",
        "WORKDIR app", "WORKDIR $HOME",
    ])
    assert out["Cmd"] == ["app", "--serve"]
    assert out["Env"] == ["PATH=/bin", "HOME=/home/", "MODE=prod", "X=y z"]
    assert out["ExposedPorts"] == {"80/tcp": {}, "8000/udp": {}, "8001/udp": {}}
    assert out["Labels"] == {"a": "1", "b": "2", "c d": "e f"}
    assert out["OnBuild"] == ["RUN make"]
    assert out["User"] == "prod"
    assert out["Volumes"] == {"/data": {}, "/x": {}}
    assert out["WorkingDir"] == "/home/"  # an absolute WORKDIR as written, as dockerd keeps it
    assert BASE["Cmd"] == ["sh"] and "User" not in BASE


def test_shell_forms_and_entrypoint_clears_cmd() -> None:
    out = apply_changes(BASE, ["ENTRYPOINT exec app"])
    assert out["Entrypoint"] == ["/bin/sh", "-c", "exec app"] and out["Cmd"] is None
    out = apply_changes({**BASE, "Shell": ["bash", "-c"]}, ["CMD run it", "ENTRYPOINT [\"e\"]"])
    assert out["Cmd"] == ["bash", "-c", "run it"] and out["Entrypoint"] == ["e"]
    assert apply_changes(BASE, []) == BASE


def test_healthcheck_is_a_change_as_in_dockerd() -> None:
    assert apply_changes(BASE, ["HEALTHCHECK CMD true"])["Healthcheck"] == {"Test": ["CMD-SHELL", "true"]}
    out = apply_changes(BASE, ['HEALTHCHECK --interval=5s --retries=2 CMD ["probe", "-q"]'])
    assert out["Healthcheck"] == {"Test": ["CMD", "probe", "-q"], "Interval": 5_000_000_000, "Retries": 2}
    assert apply_changes(BASE, ["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize("change, message", [
    ("RUN echo", "run is not a valid change command"),
    ("from busybox", "from is not a valid change command"),
    ("FOO bar", "foo is not a valid change command"),
    ("EXPOSE 80/http", "Invalid proto: http"),
    ("EXPOSE http", "Invalid containerPort: http"),
    ("USER ${X:?need X}", 'failed to process "${X:?need X}": X: need X'),
    ("ENV a=b c",
     "Syntax error - can't find = in \"c\". Must be of the form: name=value"),
])
def test_refused_changes(change: str, message: str) -> None:
    with pytest.raises(DockerfileError) as err:
        apply_changes(BASE, ["CMD ok", change])
    assert err.value.message == message  # no Dockerfile line: there is no Dockerfile


def test_an_empty_exec_form_is_null_as_dockerd_stores_it() -> None:
    out = apply_changes(BASE, ["ENTRYPOINT []", "CMD []"])
    assert out["Entrypoint"] is None and out["Cmd"] is None
