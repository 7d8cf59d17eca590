"""scripts/install and the systemd units (issue 14, acceptance 1).

The install runs on a fresh temporary root. `systemd-analyze verify` is given the installed unit files and no
--root: it then loads units from their own directory (and the host's, for network-online.target and the
like) and checks that the ExecStart commands exist and are executable at the absolute paths the units name,
which are the temporary root's; a control run on the same units pointing at an empty tree must fail, or the
check proves nothing. The daemons are then started with the units' ExecStart command lines verbatim, in
systemd's environment for a system service: a plain PATH, NOTIFY_SOCKET (Type=notify: the test waits for
READY=1), and for pyengined the socket of pyengined.socket passed by `systemd-socket-activate` (systemd's own
tool for exactly that). They must run a container, and keep it across a stop of both main processes, which
is what KillMode=process leaves running on `systemctl restart`.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon, RuntimeDaemon, unmount_under

ROOT = Path(__file__).resolve().parents[2]
UNITS = ("pyruntimed.service", "pyengined.service", "pyengined.socket")
# What systemd gives a system service (no User=): this PATH and nothing of the caller's environment.
SERVICE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

pytestmark = pytest.mark.skipif(not Path("/usr/bin/systemd-analyze").exists(), reason="systemd-analyze not here")


def unit(path: Path) -> dict[str, str]:
    """A unit file's directives (ours set each once)."""
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/usr/bin/systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "install"), "--root", str(root)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-5000:]
    return root


def test_the_units_pass_systemd_analyze_verify(installed: Path) -> None:
    out = verify([installed / "etc/systemd/system" / u for u in UNITS])
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


def test_verify_fails_on_units_whose_commands_are_missing(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc/systemd/system"
    elsewhere.mkdir(parents=True)
    for u in UNITS:
        text = (installed / "etc/systemd/system" / u).read_text()
        (elsewhere / u).write_text(text.replace(f"{installed}/usr/local/bin/", f"{tmp_path}/usr/local/bin/"))
    out = verify([elsewhere / u for u in UNITS])
    assert out.returncode != 0
    assert f"Command {tmp_path}/usr/local/bin/pyengined is not executable" in out.stderr, out.stderr


def test_the_units_say_what_an_operator_relies_on(installed: Path) -> None:
    system = installed / "etc/systemd/system"
    runtime, engine, sock = (unit(system / u) for u in UNITS)
    for service in (runtime, engine):
        assert service["KillMode"] == "process" and service["Delegate"] == "yes" and service["Type"] == "notify"
        assert service["LimitNOFILE"] == "1048576" and service["TasksMax"] == "infinity"
        assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert set(engine["Requires"].split()) == {"pyruntimed.service", "pyengined.socket"}
    assert {"pyruntimed.service", "pyengined.socket"} <= set(engine["After"].split())
    assert shlex.split(engine["ExecStart"])[:3] == [f"{installed}/usr/local/bin/pyengined", "-H", "fd://"]
    assert sock["ListenStream"] == f"{installed}/run/pyengine/engine.sock" and sock["SocketMode"] == "0660"
    config = json.loads((installed / "etc/pyengine/daemon.json").read_text())
    assert config["data-root"] == f"{installed}/var/lib/pyengine/engine"


class Notify:
    """The NOTIFY_SOCKET systemd would give a Type=notify service."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.5)

    def ready(self, daemon: RuntimeDaemon | EngineDaemon, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert daemon.proc is not None and daemon.proc.poll() is None, f"{daemon.name} exited:\n{daemon.log()}"
            try:
                if b"READY=1" in self.sock.recv(4096).split(b"\n"):
                    return
            except TimeoutError:
                continue
        raise AssertionError(f"{daemon.name} never sent READY=1:\n{daemon.log()}")


def _start_runtime(rt: RuntimeDaemon, command: list[str], notify: Notify) -> None:
    with open(rt.log_path, "ab") as log:
        rt.proc = subprocess.Popen(command, env={**SERVICE_ENV, "NOTIFY_SOCKET": str(notify.path)},
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    notify.ready(rt)


def _start_engine(e: EngineDaemon, command: list[str], listen: str, notify: Notify) -> None:
    """systemd-socket-activate listens where pyengined.socket does and starts the service on the first
    connection with the socket as fd 3, as systemd does for an inactive service."""
    Path(listen).unlink(missing_ok=True)
    with open(e.log_path, "ab") as log:
        e.proc = subprocess.Popen(
            ["systemd-socket-activate", "--listen", listen, "--fdname", "pyengined.socket",
             "-E", "PATH", "-E", "LANG", "-E", "NOTIFY_SOCKET", *command],
            env={**SERVICE_ENV, "NOTIFY_SOCKET": str(notify.path)}, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while not Path(listen).is_socket():
        assert time.monotonic() < deadline and e.proc.poll() is None, e.log()
        time.sleep(0.05)
    # The first client: it waits on the held socket while the engine starts.
    version = subprocess.Popen(["docker", "version", "--format", "{{.Server.Version}}"], env=e.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    notify.ready(e)
    out, err = version.communicate(timeout=60)
    assert version.returncode == 0 and out.strip(), err


@pytest.fixture
def daemons(installed: Path, tmp_path: Path, registry) -> Iterator[tuple[RuntimeDaemon, EngineDaemon]]:
    # The test's helpers stop what it starts and remove what the containers leave: cgroups under a
    # cgroup_root of their own, mounts under the root, the default bridge.
    rt = RuntimeDaemon(str(tmp_path))
    rt.base, rt.state = str(installed), str(installed / "run/pyengine/runtime")
    rt.address = str(installed / "run/pyengine/runtime.sock")
    e = EngineDaemon(rt)
    e.address = str(installed / "run/pyengine/engine.sock")
    e.host = f"unix://{e.address}"
    # An operator's edits, for living beside the other engines on this host and pulling offline: its own
    # cgroup root and bridge, Docker Hub through the fixture registry.
    toml = installed / "etc/pyengine/runtime.toml"
    # A top-level key: ahead of the file's tables.
    toml.write_text(f'cgroup_root = "{rt.cgroup_root}"\n' + toml.read_text())
    config_path = installed / "etc/pyengine/daemon.json"
    config = json.loads(config_path.read_text())
    config.update({"bridge-name": e.bridge, "registry-mirrors": [f"http://{registry.host}"]})
    config_path.write_text(json.dumps(config))
    try:
        yield rt, e
    finally:
        e.cleanup()
        rt.stop()
        rt.kill_containers()
        unmount_under(str(installed))


def test_the_installed_daemons_run_containers_as_the_units_start_them(
        installed: Path, tmp_path: Path, daemons: tuple[RuntimeDaemon, EngineDaemon]) -> None:
    rt, e = daemons
    system = installed / "etc/systemd/system"
    runtime_cmd = shlex.split(unit(system / "pyruntimed.service")["ExecStart"])
    engine_cmd = shlex.split(unit(system / "pyengined.service")["ExecStart"])
    listen = unit(system / "pyengined.socket")["ListenStream"]
    rt_notify, engine_notify = Notify(tmp_path / "rt.notify"), Notify(tmp_path / "engine.notify")

    _start_runtime(rt, runtime_cmd, rt_notify)
    _start_engine(e, engine_cmd, listen, engine_notify)
    docker = ["docker", "-H", f"unix://{listen}"]

    def ok(*args: str) -> str:
        out = subprocess.run([*docker, *args], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{args}: {out.stderr}\n{e.log()}"
        return out.stdout

    assert ok("run", "--rm", "busybox", "echo", "installed") == "installed\n"
    cid = ok("run", "-d", "--network", "none", "busybox", "sleep", "600").strip()

    # `systemctl reload` (ExecReload): SIGHUP to each main process, which reloads its file and goes on serving.
    for daemon in (e, rt):
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
    while not all("reloaded configuration" in daemon.log() for daemon in (e, rt)):
        time.sleep(0.1)
    assert ok("exec", cid, "echo", "after reload") == "after reload\n"

    # `systemctl restart` with KillMode=process: SIGTERM to each main process only, then the same commands.
    for daemon in (e, rt):
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(60) == 0, daemon.log()
    _start_runtime(rt, runtime_cmd, rt_notify)
    _start_engine(e, engine_cmd, listen, engine_notify)
    assert ok("inspect", "--format", "{{.State.Running}}", cid) == "true\n"
    assert ok("exec", cid, "echo", "still here") == "still here\n"
    assert os.path.exists(installed / "var/lib/pyengine/engine")
