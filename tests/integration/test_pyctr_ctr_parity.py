"""pyctr behaving as ctr where a differential audit against containerd 1.6's ctr found it did not."""
from __future__ import annotations

import io
import json
import signal
import subprocess
import tarfile
import time

import pytest

from tests.integration.helpers import BIN, pyctr


@pytest.fixture
def busybox(runtime_daemon, registry, pyctr_env):
    ref = f"{registry.host}/library/busybox:latest"
    pyctr(pyctr_env, "images", "pull", ref, check=True)
    return ref


def test_a_finished_run_leaves_its_container_and_a_new_task_can_start(busybox, pyctr_env):
    assert pyctr(pyctr_env, "run", busybox, "kept", "sh", "-c", "echo once; exit 3").returncode == 3
    # As ctr: the task is deleted once it ended, the container stays, and `tasks start` gives it a new task.
    assert "kept" not in pyctr(pyctr_env, "tasks", "ls", check=True).stdout
    info = json.loads(pyctr(pyctr_env, "containers", "info", "kept", check=True).stdout)
    assert info["id"] == "kept" and info["spec"]["process"]["args"][-1] == "echo once; exit 3"
    again = pyctr(pyctr_env, "tasks", "start", "kept")
    assert (again.returncode, again.stdout) == (3, "once\n")
    # A container whose task has ended is removed with it.
    pyctr(pyctr_env, "containers", "rm", "kept", check=True)
    out = pyctr(pyctr_env, "run", "-d", "--rm", busybox, "both", "true")
    assert out.returncode != 0 and "--detach and --rm cannot be specified together" in out.stderr


def test_signals_to_an_attached_run_go_to_the_task(busybox, pyctr_env):
    proc = subprocess.Popen([str(BIN / "pyctr"), "run", "--rm", "--no-init", busybox, "trapped", "sh", "-c",
                             "trap 'echo got TERM; exit 5' TERM; echo ready; while true; do sleep 0.1; done"],
                            env=pyctr_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, out) == (5, "got TERM\n")
    deadline = time.monotonic() + 10
    while "trapped" in pyctr(pyctr_env, "containers", "ls", "-q").stdout:
        assert time.monotonic() < deadline, "the --rm container stayed"
        time.sleep(0.1)


def test_namespace_labels_merge_and_quiet_lists_of_nothing(runtime_daemon, pyctr_env):
    pyctr(pyctr_env, "namespaces", "create", "labelled", "a=b", "c=d", check=True)
    pyctr(pyctr_env, "namespaces", "label", "labelled", "a=z", check=True)
    listed = pyctr(pyctr_env, "namespaces", "ls", check=True).stdout
    assert "a=z,c=d" in listed
    pyctr(pyctr_env, "namespaces", "label", "labelled", "a=", check=True)
    rows = [line.split() for line in pyctr(pyctr_env, "namespaces", "ls", check=True).stdout.splitlines()]
    assert ["labelled", "c=d"] in rows
    empty = {**pyctr_env, "PYCTR_NAMESPACE": "labelled"}
    for group in ("images", "containers", "content"):
        assert pyctr(empty, group, "ls", "-q", check=True).stdout == ""
    pyctr(pyctr_env, "namespaces", "rm", "labelled", check=True)


def test_removals_of_nothing_export_to_stdout_and_snapshot_mounts(busybox, pyctr_env, tmp_path):
    out = pyctr(pyctr_env, "images", "rm", "nosuch:latest")
    assert out.returncode == 0 and "image nosuch:latest not found" in out.stderr
    assert pyctr(pyctr_env, "content", "rm", "sha256:" + "0" * 64).returncode == 0
    exported = subprocess.run([str(BIN / "pyctr"), "images", "export", "-", busybox], env=pyctr_env,
                              capture_output=True, timeout=120, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        assert "manifest.json" in tar.getnames()
    assert not (tmp_path / "-").exists()
    out = pyctr(pyctr_env, "images", "import", str(tmp_path / "missing.tar"))
    assert out.returncode == 1 and out.stderr == f"pyctr: open {tmp_path / 'missing.tar'}: no such file or directory\n"
    pyctr(pyctr_env, "run", "-d", busybox, "mnt", "sleep", "60", check=True)
    try:
        line = pyctr(pyctr_env, "snapshots", "mounts", "/mnt/target", "mnt", check=True).stdout.splitlines()[0]
        assert line.startswith("mount -t ") and " /mnt/target -o " in line
    finally:
        pyctr(pyctr_env, "tasks", "rm", "-f", "mnt")
        pyctr(pyctr_env, "containers", "rm", "mnt")
