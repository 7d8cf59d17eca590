"""`docker pull --platform` as dockerd does it: an index without the platform fails, a single-platform image of
another platform is pulled with dockerd's warning (its backward-compatible behaviour since 20.10.7)."""
from __future__ import annotations

import json
import platform

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl

engine, no_leftovers = containers.engine, containers.no_leftovers

HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
OTHER_ARCH = "s390x"


def test_single_platform_image_of_another_platform_is_pulled_with_a_warning(engine, registry) -> None:
    ref = f"{registry.host}/library/busybox"
    out = cli(engine, "pull", "--platform", f"linux/{OTHER_ARCH}", ref)
    assert out.returncode == 0, out.stderr
    warning = (f"WARNING: image with reference {ref}:latest was found but does not match the specified platform: "
               f"wanted linux/{OTHER_ARCH}, actual: linux/{HOST_ARCH}")
    lines = out.stdout.splitlines()
    # After the pull's own status lines, before the name the CLI prints last.
    assert lines[-3:] == [f"Status: Downloaded newer image for {ref}:latest", warning, f"{ref}:latest"]
    again = cli(engine, "pull", "--platform", f"linux/{HOST_ARCH}", ref)
    assert again.returncode == 0 and "WARNING" not in again.stdout, again.stdout
    # The SDK reads the same stream.
    status, _, body = curl(engine, "POST", f"/v1.50/images/create?fromImage={ref}&tag=latest"
                                            f"&platform=linux/{OTHER_ARCH}")
    messages = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert status == 200 and messages[-1] == {"status": warning}
    assert cli(engine, "rmi", f"{ref}:latest").returncode == 0


def test_index_without_the_platform_fails_in_dockerds_words(engine, registry) -> None:
    ref = f"{registry.host}/library/multi"
    out = cli(engine, "pull", "--platform", f"linux/{OTHER_ARCH}", ref)
    assert out.returncode == 1
    assert out.stdout.splitlines()[-1] == "latest: Pulling from library/multi"
    assert out.stderr.strip() == f"no matching manifest for linux/{OTHER_ARCH} in the manifest list entries"
    assert cli(engine, "image", "inspect", ref).returncode == 1
    # The platform an index does have, variant included, is the one pulled, without a warning.
    arm = cli(engine, "pull", "--platform", "linux/arm64/v8", ref)
    assert arm.returncode == 0 and "WARNING" not in arm.stdout, arm.stdout + arm.stderr
    doc = json.loads(cli(engine, "image", "inspect", ref).stdout)[0]
    assert doc["Architecture"] == "arm64"
    assert cli(engine, "rmi", ref).returncode == 0
