"""Container inspect, stats and the defaults dockerd applies, each field held against the host and the container.

Every value pyengined answers must be true or absent: the paths exist on the host and are what the
container sees, the pid is the container's process, the sizes are the layers' bytes on disk.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok


# One engine for the module with busybox pulled, reset after each test.
engine, no_leftovers = containers.engine, containers.no_leftovers


def inspect(engine: EngineDaemon, ref: str, *args: str) -> dict:
    return json.loads(ok(engine, "inspect", *args, ref))[0]


def _ts(text: str) -> float:
    """Go's RFC 3339 with nanoseconds, to seconds."""
    base, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def _info(engine: EngineDaemon) -> dict:
    return json.loads(ok(engine, "info", "--format", "{{json .}}"))


# inspect -----------------------------------------------------------------------


def test_files_on_the_host_are_the_containers(engine):
    cid = ok(engine, "create", "--name", "ff", "busybox", "sleep", "300").strip()
    doc = inspect(engine, "ff")
    # dockerd fills the /etc paths at the first start; the merged dir exists only while mounted.
    assert (doc["HostnamePath"], doc["HostsPath"], doc["ResolvConfPath"]) == ("", "", "")
    assert doc["Driver"] == doc["GraphDriver"]["Name"] == "overlayfs" and doc["Platform"] == "linux"
    data = doc["GraphDriver"]["Data"]
    assert set(data) == {"LowerDir", "UpperDir", "WorkDir"}
    assert all(os.path.isdir(d) for d in [data["UpperDir"], data["WorkDir"], *data["LowerDir"].split(":")])
    assert any(os.path.exists(os.path.join(d, "bin/busybox")) for d in data["LowerDir"].split(":"))
    assert doc["ExecIDs"] is None and doc["State"]["Pid"] == 0 and doc["LogPath"] == ""

    before = time.time()
    ok(engine, "start", "ff")
    after = time.time()
    doc = inspect(engine, "ff")
    state = doc["State"]
    assert before - 1 <= _ts(state["StartedAt"]) <= after + 1 and state["FinishedAt"] == "0001-01-01T00:00:00Z"
    with open(f"/proc/{state['Pid']}/cmdline") as fh:
        assert fh.read().split("\0")[:2] == ["sleep", "300"]
    for key, path in (("HostnamePath", "/etc/hostname"), ("HostsPath", "/etc/hosts"),
                      ("ResolvConfPath", "/etc/resolv.conf")):
        host_file = doc[key]
        assert os.path.isfile(host_file), key
        with open(host_file) as fh:
            assert fh.read() == ok(engine, "exec", "ff", "cat", path), key
    # The same file, not a copy: a write inside shows on the host.
    ok(engine, "exec", "ff", "sh", "-c", "echo '10.9.8.7 marker' >> /etc/hosts")
    with open(doc["HostsPath"]) as fh:
        assert "10.9.8.7 marker" in fh.read()
    assert open(doc["HostnamePath"]).read() == cid[:12] + "\n"

    merged = doc["GraphDriver"]["Data"]["MergedDir"]
    assert os.path.ismount(merged)
    ok(engine, "exec", "ff", "sh", "-c", "echo hi > /made-inside")
    assert open(os.path.join(merged, "made-inside")).read() == "hi\n"
    assert open(os.path.join(doc["GraphDriver"]["Data"]["UpperDir"], "made-inside")).read() == "hi\n"

    ok(engine, "stop", "-t", "0", "ff")
    doc = inspect(engine, "ff")
    assert "MergedDir" not in doc["GraphDriver"]["Data"] and doc["State"]["Pid"] == 0
    assert _ts(doc["State"]["FinishedAt"]) >= _ts(doc["State"]["StartedAt"])
    assert os.path.isfile(doc["HostsPath"])  # kept after the stop, as dockerd keeps them


def test_log_path_is_the_real_log_and_log_config(engine):
    ok(engine, "run", "--name", "ll", "busybox", "echo", "hello from the log")
    doc = inspect(engine, "ll")
    with open(doc["LogPath"]) as fh:
        assert "hello from the log" in fh.read()
    assert doc["HostConfig"]["LogConfig"]["Type"] == "json-file" and doc["LogPath"].endswith("-json.log")


def test_exit_state_and_error(engine):
    assert cli(engine, "run", "--name", "ee", "busybox", "sh", "-c", "exit 3").returncode == 3
    state = inspect(engine, "ee")["State"]
    assert (state["Status"], state["ExitCode"], state["Pid"], state["Error"], state["OOMKilled"]) == \
        ("exited", 3, 0, "", False)
    assert cli(engine, "run", "--name", "bad", "busybox", "no-such-program").returncode == 127
    state = inspect(engine, "bad")["State"]
    assert state["ExitCode"] == 127 and "no-such-program" in state["Error"]
    # Nothing ran: dockerd tells of no `die`.
    assert "die" not in _actions(engine, "bad", since=0)
    # The failed start's monitor opened a log: nothing in it, and nothing of it stays after the removal.
    bad = inspect(engine, "bad")["Id"]
    ok(engine, "rm", "bad")
    assert not list(Path(engine.runtime.root, "logs").glob(f"*/{bad}.log"))


def test_oom_killed(engine):
    info = _info(engine)
    if not (info["MemoryLimit"] and info["SwapLimit"]):
        pytest.skip("the kernel has no memory and swap limits (docker info)")
    out = cli(engine, "run", "--name", "oom", "-m", "8m", "--memory-swap", "8m", "busybox", "tail", "/dev/zero")
    assert out.returncode == 137, out.stderr
    state = inspect(engine, "oom")["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    assert _actions(engine, "oom", since=0) == ["create", "attach", "start", "oom", "die"]


def _actions(engine: EngineDaemon, name: str, since: float) -> list[str]:
    out = ok(engine, "events", "--since", str(since), "--until", str(time.time()), "--filter", f"container={name}",
             "--format", "{{.Action}}")
    return out.split()


def test_oom_kills_are_told_as_they_happen(engine):
    # As containerd's OOM monitor has dockerd tell them: a child the shell outlives, and an exec, each at once.
    info = _info(engine)
    if not (info["MemoryLimit"] and info["SwapLimit"]):
        pytest.skip("the kernel has no memory and swap limits (docker info)")
    since = time.time() - 1
    ok(engine, "run", "-d", "--name", "oomlive", "-m", "8m", "--memory-swap", "8m", "busybox", "sh", "-c",
       "tail /dev/zero; sleep 300")
    deadline = time.monotonic() + 30
    while "oom" not in _actions(engine, "oomlive", since) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _actions(engine, "oomlive", since) == ["create", "start", "oom"]
    assert inspect(engine, "oomlive")["State"]["Running"] is True
    assert cli(engine, "exec", "oomlive", "tail", "/dev/zero").returncode == 137
    ok(engine, "rm", "-f", "oomlive")
    actions = _actions(engine, "oomlive", since)
    assert actions[:3] == ["create", "start", "oom"] and actions.count("oom") == 2, actions
    assert actions.index("oom", 3) < actions.index("exec_die"), actions


def test_sizes_are_the_layers_on_disk(engine):
    ok(engine, "run", "--name", "ss", "busybox", "busybox", "dd", "if=/dev/zero", "of=/big", "bs=1024", "count=2048")
    doc = inspect(engine, "ss", "--size")
    assert 2 * 1024 * 1024 <= doc["SizeRw"] < 3 * 1024 * 1024
    assert doc["SizeRootFs"] >= doc["SizeRw"] + os.path.getsize("/bin/busybox")
    assert "SizeRw" not in inspect(engine, "ss")
    listed = json.loads(ok(engine, "ps", "-a", "--size", "--format", "{{json .}}"))
    assert listed["Size"].startswith("2.1")  # "2.1MB (virtual ...)", from SizeRw and SizeRootFs


def test_exec_ids_are_the_live_execs(engine, sdk):
    ok(engine, "run", "-d", "--name", "xx", "busybox", "sleep", "300")
    waiting = sdk.api.exec_create("xx", ["sleep", "300"])["Id"]
    running = sdk.api.exec_create("xx", ["sleep", "301"])["Id"]
    sdk.api.exec_start(running, detach=True)
    done = sdk.api.exec_create("xx", ["true"])["Id"]
    sdk.api.exec_start(done)
    assert sdk.api.exec_inspect(done)["Running"] is False
    assert sorted(inspect(engine, "xx")["ExecIDs"]) == sorted([waiting, running])
    ok(engine, "stop", "-t", "0", "xx")
    assert inspect(engine, "xx")["ExecIDs"] is None
    ok(engine, "start", "xx")  # dockerd dropped them at the stop: they do not come back
    assert inspect(engine, "xx")["ExecIDs"] is None


# the /etc files --------------------------------------------------------------


def test_host_network_sees_the_hosts_files(engine):
    for name in ("hosts", "resolv.conf"):
        with open(f"/etc/{name}") as fh:
            assert ok(engine, "run", "--rm", "--network", "host", "busybox", "cat", f"/etc/{name}") == fh.read()
    host_id = ok(engine, "network", "inspect", "-f", "{{.Id}}", "host").strip()
    with open("/etc/hosts") as fh:
        assert ok(engine, "run", "--rm", "--network", host_id, "busybox", "cat", "/etc/hosts") == fh.read()
    ok(engine, "create", "--name", "hh", "--network", "host", "busybox", "true")
    ok(engine, "start", "hh")
    doc = inspect(engine, "hh")
    assert doc["HostsPath"] != "/etc/hosts" and open(doc["HostsPath"]).read() == open("/etc/hosts").read()


def test_user_mounts_replace_the_generated_files(engine, tmp_path):
    files = {"hosts": "1.2.3.4 mine\n", "resolv.conf": "nameserver 9.9.9.9\n", "hostname": "myname\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = [a for name in files for a in ("-v", f"{tmp_path / name}:/etc/{name}")]
    out = ok(engine, "run", "--name", "uu", *args, "busybox", "cat", "/etc/hosts", "/etc/resolv.conf",
             "/etc/hostname")
    assert out == "".join(files.values())
    doc = inspect(engine, "uu")  # dockerd's TrySetNetworkMount: the user's files are the paths
    assert (doc["HostnamePath"], doc["HostsPath"], doc["ResolvConfPath"]) == \
        tuple(str(tmp_path / name) for name in ("hostname", "hosts", "resolv.conf"))
    out = ok(engine, "run", "--rm", "--mount", f"type=bind,src={tmp_path / 'hosts'},dst=/etc/hosts",
             "--network", "host", "busybox", "cat", "/etc/hosts")
    assert out == files["hosts"]


# defaults dockerd applies ------------------------------------------------------


def test_network_sysctls_for_a_namespace_of_its_own(engine):
    if not os.path.exists("/proc/sys/net/ipv4/ping_group_range"):
        pytest.skip("the kernel has no net.ipv4.ping_group_range")
    read = ["cat", "/proc/sys/net/ipv4/ping_group_range"]
    assert ok(engine, "run", "--rm", "busybox", *read).split() == ["0", "2147483647"]
    assert ok(engine, "run", "--rm", "--network", "none", "busybox", *read).split() == ["0", "2147483647"]
    assert ok(engine, "run", "--rm", "--sysctl", "net.ipv4.ping_group_range=1 1", "busybox", *read).split() == \
        ["1", "1"]
    with open(read[1]) as fh:
        assert ok(engine, "run", "--rm", "--network", "host", "busybox", *read) == fh.read()
    # What it is for: an ICMP echo socket for a user without CAP_NET_RAW, in the container's network namespace
    # (busybox's ping only tries raw sockets, so the host's python opens it there).
    ok(engine, "run", "-d", "--name", "pg", "busybox", "sleep", "300")
    pid = str(inspect(engine, "pg")["State"]["Pid"])
    probe = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)"
    as_user = ["setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups", sys.executable, "-c", probe]
    subprocess.run(["nsenter", "-t", pid, "-n", *as_user], check=True, timeout=30)
    low, high = (int(x) for x in open(read[1]).read().split())
    if not low <= 1000 <= high:  # the host's own namespace, as it is set here, refuses the same socket
        assert subprocess.run(as_user, capture_output=True, timeout=30).returncode != 0
    ok(engine, "create", "--name", "sc", "busybox", "true")
    assert inspect(engine, "sc")["HostConfig"].get("Sysctls") is None  # omitted when unset, as Go's omitempty


def _ipc_ns(engine: EngineDaemon, *args: str) -> str:
    return ok(engine, "run", "--rm", *args, "busybox", "busybox", "readlink", "/proc/self/ns/ipc").strip()


def test_ipc_modes(engine):
    host_ns = os.readlink("/proc/self/ns/ipc")
    ok(engine, "create", "--name", "ii", "busybox", "true")
    assert inspect(engine, "ii")["HostConfig"]["IpcMode"] == "private"
    assert _ipc_ns(engine) != host_ns
    assert _ipc_ns(engine, "--ipc", "private") != host_ns
    assert _ipc_ns(engine, "--ipc", "shareable") != host_ns
    assert _ipc_ns(engine, "--ipc", "host") == host_ns
    assert _ipc_ns(engine, "--ipc", "none") != host_ns
    mounts = ["sh", "-c", "grep -c ' /dev/shm ' /proc/mounts || true"]
    assert ok(engine, "run", "--rm", "--ipc", "none", "busybox", *mounts).strip() == "0"
    assert ok(engine, "run", "--rm", "--ipc", "shareable", "busybox", *mounts).strip() == "1"
    ok(engine, "create", "--name", "sh", "--ipc", "shareable", "busybox", "true")
    assert inspect(engine, "sh")["HostConfig"]["IpcMode"] == "shareable"

    out = cli(engine, "create", "--ipc", "bogus", "busybox", "true")
    assert out.returncode != 0 and "invalid IPC mode: bogus" in out.stderr


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(path)]


def test_ipc_container_mode_joins_a_shareable_donor(engine):
    ok(engine, "run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sleep", "300")
    donor_ns = ok(engine, "exec", "donor", "busybox", "readlink", "/proc/self/ns/ipc").strip()
    ok(engine, "exec", "donor", "sh", "-c", "echo shared > /dev/shm/note")
    script = "busybox readlink /proc/self/ns/ipc; cat /dev/shm/note"
    out = ok(engine, "run", "--name", "joiner", "--ipc", "container:donor", "busybox", "sh", "-c", script)
    assert out.split() == [donor_ns, "shared"]
    # Kept by id, as dockerd keeps it.
    assert inspect(engine, "joiner")["HostConfig"]["IpcMode"] == f"container:{inspect(engine, 'donor')['Id']}"

    ok(engine, "run", "-d", "--name", "private", "busybox", "sleep", "300")
    out = cli(engine, "run", "--rm", "--ipc", "container:private", "busybox", "true")
    private = inspect(engine, "private")["Id"]
    assert out.returncode != 0 and (f"can't join IPC of container {private}: non-shareable IPC (hint: use "
                                    "IpcMode:shareable for the donor container)") in out.stderr
    out = cli(engine, "create", "--ipc", "container:nosuch", "busybox", "true")
    assert out.returncode != 0 and "No such container: nosuch" in out.stderr

    ipc_root = os.path.join(engine.base, "exec", "ipc")
    assert len(_mounts_under(ipc_root)) == 2  # the donor's namespace and /dev/shm
    ok(engine, "stop", "-t", "0", "donor")
    assert _mounts_under(ipc_root) == []
    out = cli(engine, "start", "joiner")
    assert out.returncode != 0 and f"Container {inspect(engine, 'donor')['Id']} is not running" in out.stderr
    ok(engine, "start", "donor")  # a fresh /dev/shm (and namespace), as dockerd gives a restarted donor
    assert ok(engine, "exec", "donor", "ls", "/dev/shm") == ""
    ok(engine, "start", "joiner")
    donor_id = inspect(engine, "donor")["Id"]
    ok(engine, "rm", "-f", "donor")
    assert _mounts_under(ipc_root) == [] and not os.path.exists(os.path.join(ipc_root, donor_id))


def test_pid_container_mode_joins_a_running_donor(engine):
    donor_id = ok(engine, "run", "-d", "--name", "pdonor", "busybox", "sleep", "300").strip()
    donor_ns = ok(engine, "exec", "pdonor", "busybox", "readlink", "/proc/self/ns/pid").strip()
    script = "busybox readlink /proc/self/ns/pid; busybox ps -o comm"
    out = ok(engine, "run", "--name", "pjoiner", "--pid", "container:pdonor", "busybox", "sh", "-c", script)
    assert out.split()[0] == donor_ns and "sleep" in out.split()
    # Kept by id, as dockerd does, so that renaming the donor keeps the link.
    assert inspect(engine, "pjoiner")["HostConfig"]["PidMode"] == f"container:{donor_id}"
    pid_root = os.path.join(engine.base, "exec", "pid")
    assert _mounts_under(pid_root) == []  # the pin goes with the joiner's run

    ok(engine, "rename", "pdonor", "pdonor2")
    ok(engine, "start", "pjoiner")
    ok(engine, "run", "-d", "--name", "psleeper", "--pid", "container:pdonor2", "busybox", "sleep", "300")
    assert len(_mounts_under(pid_root)) == 1
    ok(engine, "stop", "-t", "0", "pdonor2")  # the kernel kills what is left in the donor's namespace
    assert ok(engine, "wait", "psleeper").strip() == "137"
    assert _mounts_under(pid_root) == []
    out = cli(engine, "start", "psleeper")
    assert out.returncode != 0 and f"container {donor_id} is not running" in out.stderr

    ok(engine, "create", "--name", "plost", "--pid", "container:nosuch", "busybox", "true")
    assert inspect(engine, "plost")["HostConfig"]["PidMode"] == "container:nosuch"
    status, _, body = curl(engine, "POST", "/v1.41/containers/plost/start")
    assert status == 404 and "cannot join PID of a non running container: nosuch" in body
    out = cli(engine, "create", "--pid", "container:", "busybox", "true")
    assert out.returncode != 0
    ok(engine, "rm", "-f", "pdonor2", "pjoiner", "psleeper", "plost")
    assert os.listdir(pid_root) == []


def test_stats_limit_of_an_unlimited_container_is_the_hosts_memory(engine, sdk):
    ok(engine, "run", "-d", "--name", "mm", "busybox", "sleep", "300")
    limit = sdk.containers.get("mm").stats(stream=False)["memory_stats"]["limit"]
    assert limit == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") == _info(engine)["MemTotal"]


def test_resize_without_a_terminal(engine):
    cid = ok(engine, "run", "-d", "--name", "rr", "busybox", "sleep", "300").strip()
    since = str(int(time.time()) - 1)
    status, _, body = curl(engine, "POST", f"/v1.41/containers/{cid}/resize?h=20&w=80")
    assert status == 200, body
    events = subprocess.run(["docker", "events", "--since", since, "--until", str(int(time.time()) + 1),
                             "--filter", "event=resize", "--format", "{{.Actor.Attributes.height}}"],
                            env=engine.env(), capture_output=True, text=True, timeout=30, check=True).stdout
    assert events.split() == ["20"]
    ok(engine, "stop", "-t", "0", "rr")
    status, _, body = curl(engine, "POST", f"/v1.41/containers/{cid}/resize?h=20&w=80")
    assert (status, json.loads(body)) == (409, {"message": f"Container {cid} is not running"})


@pytest.mark.parametrize("body, message", [
    ("x", "invalid JSON: invalid character 'x' looking for beginning of value"),
    ("{", "invalid JSON: unexpected EOF"),
    ('{"Image": "busybox",}', "invalid JSON: invalid character '}' looking for beginning of object key string"),
    ('{"Image" "busybox"}', "invalid JSON: invalid character '\"' after object key"),
    ("", "invalid JSON: got EOF while reading request body"),
    ('{"Image": "busybox"} x', "unexpected content after JSON"),
])
def test_malformed_json_in_gos_words(engine, body, message):
    for path in ("/v1.41/containers/create", "/v1.41/networks/create"):
        status, ctype, text = curl(engine, "POST", path, body)
        assert (status, ctype, json.loads(text)) == (400, "application/json", {"message": message}), path


def test_a_killed_monitor_ends_the_container_with_sigkills_code(engine):
    # As containerd's rule for a dead shim: what is left of the task is killed, its exit is 137.
    cid = ok(engine, "run", "-d", "--name", "orphan", "busybox", "sleep", "300").strip()
    conmon = subprocess.run(["pgrep", "-f", f"conmon .*{cid}"], capture_output=True, text=True).stdout.split()
    assert len(conmon) == 1, conmon
    os.kill(int(conmon[0]), 9)
    deadline = time.monotonic() + 20
    while inspect(engine, "orphan")["State"]["Running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    state = inspect(engine, "orphan")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    ok(engine, "rm", "orphan")
