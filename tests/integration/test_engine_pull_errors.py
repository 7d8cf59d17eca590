"""Pull failures in dockerd's words: what a client shows its user, and the status it branches on."""
from __future__ import annotations

import json

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl

engine, no_leftovers = containers.engine, containers.no_leftovers


def test_a_repository_the_mirror_does_not_have(engine) -> None:
    # The mirror answers "manifest unknown" and Docker Hub itself is out of reach: dockerd says the
    # repository does not exist (or needs a login), with a 404, and the CLI exits 125.
    message = ("pull access denied for nosuchimage, repository does not exist or may require 'docker login'")
    status, ctype, body = curl(engine, "POST", "/v1.41/images/create?fromImage=nosuchimage&tag=latest")
    assert (status, ctype) == (404, "application/json"), body
    assert message in json.loads(body)["message"]
    run = cli(engine, "run", "--rm", "nosuchimage")
    assert run.returncode == 125 and message in run.stderr, run.stderr
