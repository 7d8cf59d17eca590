"""What a differential audit against dockerd 20.10 found different, each shown behaving as dockerd does.

The docker CLI, the SDK and raw HTTP drive one engine; every case names what dockerd answers.
"""
from __future__ import annotations

import io
import os
import json
import socket
import subprocess
import tarfile
import time

import docker
import pytest

from tests.fixtures.images import busybox_image
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def _raw(engine, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(engine.address)
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_http_1_0_clients_get_streams_ended_by_closing(engine) -> None:
    # nginx speaks HTTP/1.0 to its upstream by default: no chunked encoding for it.
    ok(engine, "run", "--name", "old", "busybox", "echo", "hello")
    reply = _raw(engine, b"GET /containers/old/logs?stdout=1 HTTP/1.0\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
    assert b"chunked" not in head.lower() and body.endswith(b"hello\n")


def test_anchored_name_filters_and_quoted_commands_in_ps(engine) -> None:
    ok(engine, "create", "--name", "web", "busybox", "sh", "-c", "exit 3")
    ok(engine, "create", "--name", "web2", "busybox", "true")
    assert ok(engine, "ps", "-a", "--format", "{{.Names}}", "--filter", "name=^web$").split() == ["web"]
    assert ok(engine, "ps", "-a", "--no-trunc", "--format", "{{.Command}}", "--filter", "name=^web$").strip() == \
        "\"sh -c 'exit 3'\""
    assert ok(engine, "ps", "-a", "-q", "--filter", "isolation=default")
    for bad, text in (("exited=abc", 'parsing "abc": invalid syntax'),
                      ("health=bogus", "Unrecognised filter value for health: bogus")):
        out = cli(engine, "ps", "-a", "--filter", bad)
        assert out.returncode != 0 and text in out.stderr


def test_bare_env_names_unset_variables_in_run_and_exec(engine) -> None:
    env = {**engine.env()}
    env.pop("HOSTNAME", None)
    out = ok(engine, "run", "--rm", "--network", "none", "-e", "HOSTNAME", "busybox", "env")
    assert "HOSTNAME=" not in out
    ok(engine, "run", "-d", "--name", "e1", "busybox", "sleep", "60")
    out = ok(engine, "exec", "-e", "HOSTNAME", "-e", "X=1", "e1", "env")
    assert "HOSTNAME=" not in out and "X=1" in out


def test_logs_details_and_an_unreadable_tail(engine) -> None:
    ok(engine, "run", "--name", "lg", "--log-opt", "labels=a", "-l", "a=b c", "-e", "E=1", "--log-opt", "env=E",
       "busybox", "echo", "x")
    assert ok(engine, "logs", "--details", "lg") == "E=1,a=b+c x\n"
    ok(engine, "run", "--name", "plain", "busybox", "echo", "y")
    assert ok(engine, "logs", "--details", "plain") == " y\n"
    assert ok(engine, "logs", "--tail", "abc", "plain") == "y\n"


def test_exec_failures_are_told_in_the_stream_with_dockers_exit_codes(engine) -> None:
    ok(engine, "run", "-d", "--name", "x1", "busybox", "sleep", "60")
    out = cli(engine, "exec", "-u", "nosuch", "x1", "id")
    assert out.returncode == 126 and "nosuch" in out.stdout, (out.returncode, out.stdout, out.stderr)
    out = cli(engine, "exec", "x1", "nosuchcmd")
    assert out.returncode == 127 and out.stdout.startswith("OCI runtime exec failed: ") and \
        "executable file not found" in out.stdout, (out.stdout, out.stderr)
    sdk = docker.DockerClient(base_url=engine.host)
    exec_id = sdk.api.exec_create("x1", ["true"])["Id"]
    sdk.api.exec_start(exec_id)
    sdk.api.exec_start(exec_id)  # a second start: no exception, the refusal is in the stream, as with dockerd
    status, _, _ = curl(engine, "POST", "/containers/x1/exec", json.dumps({"Cmd": "true"}))
    assert status == 400  # a plain array only, unlike a container's Cmd


def test_single_path_binds_are_anonymous_volumes_and_modes_show_in_inspect(engine, tmp_path) -> None:
    sdk = docker.DockerClient(base_url=engine.host)
    c = sdk.containers.create("busybox", "true", volumes=["/data"], network_mode="none")
    mounts = c.attrs["Mounts"]
    assert [(m["Type"], m["Destination"], m["Mode"]) for m in mounts] == [("volume", "/data", "z")]
    ok(engine, "create", "--name", "modes", "-v", f"{tmp_path}:/b:ro,rshared", "-v", "/anon", "-v", "nc:/nc:nocopy",
       "busybox")
    got = {m["Destination"]: m for m in json.loads(ok(engine, "inspect", "-f", "{{json .Mounts}}", "modes"))}
    assert got["/b"]["Propagation"] == "rshared" and got["/anon"]["Mode"] == "" and got["/nc"]["Mode"] == "nocopy"


def test_keys_in_another_case_are_read_as_dockerds_decoder_reads_them(engine) -> None:
    status, _, body = curl(engine, "POST", "/containers/create?name=lc", json.dumps(
        {"image": "busybox", "cmd": ["true"], "env": ["A=B"], "hostconfig": {"networkmode": "none",
                                                                             "memory": 67108864}}))
    assert status == 201, body
    info = json.loads(ok(engine, "inspect", "lc"))[0]
    assert info["HostConfig"]["NetworkMode"] == "none" and info["HostConfig"]["Memory"] == 67108864
    assert "A=B" in info["Config"]["Env"]
    status, _, body = curl(engine, "POST", "/volumes/create", json.dumps({"name": "lcvol", "labels": {"k": "v"}}))
    assert status == 201 and json.loads(body)["Name"] == "lcvol" and json.loads(body)["Labels"] == {"k": "v"}


def test_status_codes_of_ambiguous_and_malformed_names(engine) -> None:
    status, _, body = curl(engine, "GET", "/images/a:b:c/json")
    assert status == 400 and "invalid reference format" in body
    status, _, body = curl(engine, "POST", "/containers/create", json.dumps({"Image": "a:b:c"}))
    assert status == 400 and "invalid reference format" in body
    ids = [json.loads(curl(engine, "POST", "/containers/create", json.dumps({"Image": "busybox"}))[2])["Id"]
           for _ in range(40)]
    first = {}
    for cid in ids:
        first.setdefault(cid[0], []).append(cid)
    shared = next(k for k, v in first.items() if len(v) > 1)
    status, _, body = curl(engine, "GET", f"/containers/{shared}/json")
    assert status == 400 and "Multiple IDs found with provided prefix" in body
    status, _, _ = curl(engine, "OPTIONS", "/containers/json")
    assert status == 200
    status, _, body = curl(engine, "POST", f"/containers/{ids[0]}/start?checkpoint=cp1")
    assert status == 400 and "checkpoint" in body


def test_dockerds_words_around_kill_rename_and_rm(engine) -> None:
    out = cli(engine, "kill", "nosuch")
    assert "Cannot kill container: nosuch: No such container: nosuch" in out.stderr
    ok(engine, "create", "--name", "r1", "busybox", "true")
    ok(engine, "create", "--name", "r2", "busybox", "true")
    out = cli(engine, "rename", "r1", "r2")
    assert out.returncode != 0 and "Error when allocating new name: Conflict." in out.stderr
    out = cli(engine, "rename", "nosuch", "x")
    assert out.returncode != 0 and "No such container: nosuch" in out.stderr
    out = cli(engine, "rm", "--link", "nosuch")
    assert out.returncode != 0 and "No such container: nosuch" in out.stderr
    ok(engine, "run", "-d", "--name", "p1", "busybox", "sleep", "60")
    ok(engine, "pause", "p1")
    out = cli(engine, "rm", "p1")
    assert out.returncode != 0 and "You cannot remove a paused container" in out.stderr
    ok(engine, "unpause", "p1")


def test_a_missing_network_is_found_missing_at_start_without_a_pull(engine) -> None:
    out = cli(engine, "create", "--name", "later", "--network", "notyet", "busybox", "true")
    assert out.returncode == 0 and "Unable to find image" not in out.stderr, out.stderr
    out = cli(engine, "start", "later")
    assert out.returncode != 0 and "network notyet not found" in out.stderr
    ok(engine, "network", "create", "notyet")
    try:
        ok(engine, "start", "-a", "later")
        assert "notyet" in ok(engine, "inspect", "-f", "{{json .NetworkSettings.Networks}}", "later")
    finally:
        ok(engine, "rm", "-f", "later")
        ok(engine, "network", "rm", "notyet")


def test_bridge_driver_options_are_honoured_or_refused(engine) -> None:
    ok(engine, "network", "create", "-o", "com.docker.network.driver.mtu=1400",
       "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
       "-o", "com.docker.network.bridge.inhibit_ipv4=false", "opts")
    try:
        ok(engine, "run", "-d", "--name", "mtu", "--network", "opts", "-p", "80", "busybox", "sleep", "60")
        assert "mtu 1400" in ok(engine, "exec", "mtu", "ip", "link", "show", "eth0")
        assert ok(engine, "port", "mtu", "80").splitlines()[0].startswith("127.0.0.1:")
        ok(engine, "rm", "-f", "mtu")
        # A second network's interface takes that network's prefix, numbered apart from eth0 (libnetwork's).
        ok(engine, "network", "create", "-o", "com.docker.network.container_iface_prefix=cif", "pfx")
        ok(engine, "run", "-d", "--name", "pfx", "--network", "opts", "busybox", "sleep", "60")
        ok(engine, "network", "connect", "pfx", "pfx")
        links = ok(engine, "exec", "pfx", "ip", "-o", "link")
        assert ": eth0@" in links and ": cif0@" in links, links
        ok(engine, "rm", "-f", "pfx")
    finally:
        cli(engine, "network", "rm", "opts", "pfx")
    for option in ("com.docker.network.bridge.enable_icc=false", "com.docker.network.bogus=1",
                   "com.docker.network.bridge.inhibit_ipv4=true",
                   "com.docker.network.container_iface_prefix=a/b"):
        out = cli(engine, "network", "create", "-o", option, "refused")
        assert out.returncode != 0 and option.split("=")[0] in out.stderr
    assert ok(engine, "network", "ls", "-q", "--filter", "name=^bridge$")
    out = cli(engine, "network", "ls", "--filter", "type=bogus")
    assert out.returncode != 0 and "invalid filter" in out.stderr


def test_volume_filters_as_dockerd(engine) -> None:
    ok(engine, "volume", "create", "--label", "keep=1", "v1")
    ok(engine, "volume", "create", "v10")
    assert ok(engine, "volume", "ls", "-q", "--filter", "name=^v1$").split() == ["v1"]
    out = cli(engine, "volume", "ls", "--filter", "dangling=maybe")
    assert out.returncode != 0
    # Each endpoint has its own set: label! only prunes; dangling, driver and name only list.
    for refused in (("ls", "--filter", "label!=keep"), ("prune", "-af", "--filter", "dangling=true"),
                    ("prune", "-af", "--filter", "name=v1")):
        out = cli(engine, "volume", *refused)
        assert out.returncode != 0 and f"invalid filter '{refused[-1].split('=')[0]}'" in out.stderr, out.stderr
    assert "v10" in ok(engine, "volume", "prune", "-af", "--filter", "label!=keep")
    assert ok(engine, "volume", "ls", "-q").split() == ["v1"]


def test_a_tag_named_like_an_image_id_is_refused(engine) -> None:
    out = cli(engine, "tag", "busybox", "sha256:" + "a" * 64)
    assert out.returncode != 0 and "refusing to create an ambiguous tag" in out.stderr


def test_user_network_files_and_ports_of_stopped_containers(engine) -> None:
    ok(engine, "network", "create", "files")
    try:
        out = ok(engine, "run", "--rm", "--network", "files", "--hostname", "h1.example.org", "busybox",
                 "cat", "/etc/resolv.conf", "/etc/hosts")
        assert "options ndots:0\n" in out and "\th1.example.org h1\n" in out, out
    finally:
        ok(engine, "network", "rm", "files")
    ok(engine, "run", "-d", "--name", "pub", "-p", "80", "--expose", "81", "busybox", "sleep", "60")
    assert ok(engine, "ps", "--format", "{{.Ports}}", "--filter", "name=pub").strip()
    ok(engine, "stop", "-t", "0", "pub")
    assert json.loads(ok(engine, "inspect", "-f", "{{json .NetworkSettings.Ports}}", "pub")) == {}
    assert ok(engine, "ps", "-a", "--format", "{{.Ports}}", "--filter", "name=pub").strip() == ""
    out = cli(engine, "run", "--rm", "-p", "192.0.2.99:30112:80", "busybox", "true")
    assert out.returncode != 0 and "cannot assign requested address" in out.stderr


def test_volume_and_network_create_refusals_in_dockerds_words(engine) -> None:
    out = cli(engine, "volume", "create", "-o", "foo=bar", "vbad")
    assert out.returncode != 0 and 'create vbad: invalid option: "foo"' in out.stderr
    out = cli(engine, "volume", "create", "-o", "type=nfs", "vnfs")
    assert out.returncode != 0 and 'create vnfs: missing required option: "device"' in out.stderr
    out = cli(engine, "network", "create", "-d", "host", "h2")
    assert out.returncode != 0 and 'only one instance of "host" network is allowed' in out.stderr


def _image_id(engine, ref: str) -> str:
    return ok(engine, "image", "inspect", "-f", "{{.Id}}", ref).strip()


def test_committed_images_know_their_parents(engine) -> None:
    busybox = _image_id(engine, "busybox")
    ok(engine, "run", "--name", "src1", "busybox", "sh", "-c", "echo 1 > /one")
    ok(engine, "commit", "src1", "chain:one")
    one = _image_id(engine, "chain:one")
    ok(engine, "run", "--name", "src2", "chain:one", "sh", "-c", "echo 2 > /two")
    mid = ok(engine, "commit", "src2").strip()  # nameless
    ok(engine, "run", "--name", "src3", mid, "sh", "-c", "echo 3 > /three")
    ok(engine, "commit", "src3", "chain:top")
    top = _image_id(engine, "chain:top")
    ok(engine, "rm", "src1", "src2", "src3")
    assert ok(engine, "image", "inspect", "-f", "{{.Parent}}", "chain:top").strip() == mid
    assert ok(engine, "image", "inspect", "-f", "{{.Parent}}", mid).strip() == one
    ids = [line for line in ok(engine, "history", "-q", "--no-trunc", "chain:top").split() if line != "<missing>"]
    assert ids == [top, mid, one, busybox]
    # A nameless image others were made from shows with --all only; one with children cannot be deleted.
    assert mid not in ok(engine, "images", "-q", "--no-trunc") and mid in ok(engine, "images", "-aq", "--no-trunc")
    out = cli(engine, "rmi", "-f", one)
    assert out.returncode != 0 and "(cannot be forced) - image has dependent child images" in out.stderr
    # The top image takes its nameless parent along, and stops at a named one.
    out = ok(engine, "rmi", "chain:top")
    assert f"Deleted: {top}" in out and f"Deleted: {mid}" in out and one not in out
    assert _image_id(engine, "chain:one") == one
    ok(engine, "rmi", "chain:one")


def test_every_container_has_a_dockerenv_in_no_layer(engine) -> None:
    listing = ok(engine, "run", "--name", "env1", "--network", "none", "busybox", "sh", "-c",
                 "ls -l /.dockerenv; touch /made")
    assert listing.startswith("-rwxr-xr-x") and listing.split()[4] == "0", listing
    assert ok(engine, "diff", "env1").split() == ["A", "/made"]


def test_containers_of_an_internal_network_reach_each_other(engine) -> None:
    # Where bridged traffic goes through iptables and FORWARD drops (as dockerd leaves this host), only the
    # engine's own rule lets it through; it goes with the network's bridge.
    nid = ok(engine, "network", "create", "--internal", "inner").strip()
    try:
        ok(engine, "run", "-d", "--name", "i1", "--network", "inner", "busybox", "sleep", "60")
        out = cli(engine, "run", "--rm", "--network", "inner", "busybox", "ping", "-c", "1", "-W", "3", "i1")
        assert out.returncode == 0, out.stdout + out.stderr
        ok(engine, "rm", "-f", "i1")
    finally:
        ok(engine, "network", "rm", "inner")
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    assert f"pe-{nid[:12]}" not in rules


def test_rmi_of_a_pulled_name_tells_of_its_digest_too(engine, registry) -> None:
    ref = f"{registry.host}/library/busybox:latest"
    ok(engine, "pull", "-q", ref)
    ok(engine, "tag", ref, "other:1")
    digest = ok(engine, "image", "inspect", "-f", "{{index .RepoDigests 0}}", ref).strip()
    out = ok(engine, "rmi", ref).splitlines()
    assert out[0] == f"Untagged: {ref}" and f"Untagged: {digest}" in out[1:], out
    assert ok(engine, "rmi", "other:1").splitlines() == ["Untagged: other:1"]


def test_commit_change_errors_name_no_dockerfile_line(engine) -> None:
    ok(engine, "create", "--name", "cc", "busybox", "true")
    out = cli(engine, "commit", "-c", "EXPOSE http", "cc")
    assert out.returncode != 0 and "Invalid containerPort: http" in out.stderr and "line" not in out.stderr


def _unpacked_bytes(layer: bytes) -> int:
    """A layer's size as dockerd counts it: file contents and symlink targets (hardlinks have no bytes of
    their own in a tar)."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return sum(m.size if m.isreg() else len(m.linkname) if m.issym() else 0 for m in tar.getmembers())


def test_image_and_container_sizes_are_unpacked_bytes(engine) -> None:
    image = busybox_image()
    manifest = json.loads(image.manifest)
    expected = sum(_unpacked_bytes(image.blobs[layer["digest"]]) for layer in manifest["layers"])
    compressed = sum(layer["size"] for layer in manifest["layers"])
    assert expected > compressed
    assert json.loads(ok(engine, "image", "inspect", "-f", "{{json .Size}}", "busybox")) == expected
    history = json.loads(curl(engine, "GET", "/images/busybox/history")[2])
    assert sum(entry["Size"] for entry in history) == expected
    listed = json.loads(curl(engine, "GET", "/images/json")[2])
    assert [entry["Size"] for entry in listed if "busybox:latest" in entry["RepoTags"]] == [expected]
    # An untouched container's writable layer is empty, as dockerd shows it; a written one counts its bytes.
    ok(engine, "run", "--name", "untouched", "busybox", "true")
    ok(engine, "run", "--name", "written", "busybox", "sh", "-c", "head -c 1000 /dev/zero > /x")
    listed = json.loads(curl(engine, "GET", "/containers/json?all=1&size=1")[2])
    sizes = {c["Names"][0]: (c.get("SizeRw"), c["SizeRootFs"]) for c in listed}
    # A listing leaves out a zero SizeRw (Go's omitempty); inspect's pointer keeps it.
    assert sizes["/untouched"] == (None, expected)
    assert json.loads(ok(engine, "inspect", "-s", "-f", "{{json .SizeRw}}", "untouched")) == 0
    assert sizes["/written"] == (1000, expected + 1000)


def test_execs_left_on_a_stopped_container_are_forgotten(engine) -> None:
    ok(engine, "run", "-d", "--name", "execs", "busybox", "sleep", "60")
    sdk = docker.DockerClient(base_url=engine.host)
    try:
        ran = sdk.api.exec_create("execs", ["true"])["Id"]
        sdk.api.exec_start(ran)
        pending = sdk.api.exec_create("execs", ["true"])["Id"]
        assert sdk.api.exec_inspect(pending)["ExitCode"] is None
        ok(engine, "stop", "-t", "0", "execs")
        # As dockerd: the ended exec stays inspectable, the one never started went with the container's stop.
        assert sdk.api.exec_inspect(ran)["ExitCode"] == 0
        try:
            sdk.api.exec_inspect(pending)
            raise AssertionError("the pending exec outlived its container's stop")
        except docker.errors.NotFound as e:
            assert f"No such exec instance: {pending}" in str(e)
    finally:
        sdk.close()


def _status(engine, name: str) -> str:
    return ok(engine, "inspect", "-f", "{{.State.Status}}", name).strip()


def test_kill_ends_a_restart_loop_and_realtime_signal_names(engine) -> None:
    ok(engine, "run", "-d", "--name", "looping", "--restart", "always", "busybox", "sh", "-c", "exit 1")
    deadline = time.monotonic() + 30
    # Three restarts in, it waits out a delay of 800 ms or more: long enough for the kill to come in it.
    while ok(engine, "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "looping").split() != ["restarting",
                                                                                                      "3"]:
        assert time.monotonic() < deadline, "never restarting"
        time.sleep(0.05)
    # As dockerd: no process to signal, the kill stops the loop.
    assert ok(engine, "kill", "looping") == "looping\n"
    time.sleep(2)
    assert _status(engine, "looping") == "exited"
    # systemd images stop on SIGRTMIN+3: Docker knows the real-time names.
    ok(engine, "run", "-d", "--name", "rt", "--stop-signal", "SIGRTMIN+3", "busybox", "sleep", "60")
    assert ok(engine, "inspect", "-f", "{{.Config.StopSignal}}", "rt") == "SIGRTMIN+3\n"
    ok(engine, "kill", "-s", "RTMIN+1", "rt")


def test_exec_terminals_get_term_and_sdk_execs_read_their_failures(engine) -> None:
    ok(engine, "run", "-d", "--name", "termed", "busybox", "sleep", "60")
    assert "TERM=xterm" in ok(engine, "exec", "-t", "termed", "env").split()
    assert "TERM=" not in ok(engine, "exec", "termed", "env")
    assert "TERM=vt100" in ok(engine, "exec", "-t", "-e", "TERM=vt100", "termed", "env").split()
    sdk = docker.DockerClient(base_url=engine.host)
    try:
        # docker-py reads the stream after the 101's headers: the failure must come after them to be seen.
        result = sdk.containers.get("termed").exec_run("true", user="nosuchuser")
        assert result == (126, b"unable to find user nosuchuser: no matching entries in passwd file\r\n")
    finally:
        sdk.close()


def test_sdk_created_containers_inspect_as_in_dockerd(engine) -> None:
    sdk = docker.DockerClient(base_url=engine.host)
    try:
        c = sdk.containers.create("busybox", "true", name="sdkmade",
                                  healthcheck={"test": ["CMD", "true"], "interval": 1_000_000_000})
        attrs = c.attrs
        # docker-py sends no RestartPolicy and no PublishAllPorts; Go's zero values show, empty health fields do not.
        assert attrs["HostConfig"]["RestartPolicy"] == {"Name": "", "MaximumRetryCount": 0}
        assert attrs["HostConfig"]["PublishAllPorts"] is False
        assert attrs["Config"]["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 1_000_000_000}
        # A policy with its name alone gets Go's zero count, which Python code compares with numbers.
        c = sdk.containers.create("busybox", "true", name="sdkpolicy", restart_policy={"Name": "always"})
        assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
        # docker-py asks for `/containers//sdkpolicy/json` when given the name as `Names` lists it: dockerd's
        # router redirects to the clean path, and docker-py follows.
        assert sdk.containers.get("/sdkpolicy").id == c.id
        sdk.api.remove_container("/sdkpolicy")
    finally:
        sdk.close()
    out = cli(engine, "run", "--restart", "always:3", "busybox", "true")
    assert "maximum retry count cannot be used with restart policy 'always'" in out.stderr


def test_a_command_no_one_may_execute_is_126(engine) -> None:
    out = cli(engine, "run", "--name", "noexec", "busybox", "/etc/passwd")
    assert out.returncode == 126 and "permission denied" in out.stderr, out.stderr
    assert ok(engine, "inspect", "-f", "{{.State.ExitCode}}", "noexec") == "126\n"


def test_exec_events_name_the_program_then_its_arguments(engine) -> None:
    ok(engine, "run", "-d", "--name", "evx", "busybox", "sleep", "60")
    since = str(time.time() - 1)
    ok(engine, "exec", "evx", "true")
    actions = ok(engine, "events", "--since", since, "--until", str(time.time() + 1), "--filter", "container=evx",
                 "--format", "{{json .Action}}").splitlines()
    # dockerd writes the program, a space and the arguments: "true " for a program alone.
    execs = [a for a in map(json.loads, actions) if a.startswith("exec_")]
    assert execs[:2] == ["exec_create: true ", "exec_start: true "]


def test_health_probes_are_told_of_as_execs(engine) -> None:
    since = str(time.time() - 1)
    ok(engine, "run", "-d", "--name", "probed", "--health-cmd", "true", "--health-interval", "1s", "busybox",
       "sleep", "60")
    deadline = time.monotonic() + 30
    while ok(engine, "inspect", "-f", "{{.State.Health.Status}}", "probed").strip() != "healthy":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    actions = [json.loads(a) for a in ok(engine, "events", "--since", since, "--until", str(time.time()), "--filter",
                                         "container=probed", "--format", "{{json .Action}}").splitlines()]
    # As dockerd: each probe is an exec with its three events, then the health status.
    assert actions[actions.index("start") + 1:][:4] == ["exec_create: /bin/sh -c true", "exec_start: /bin/sh -c true",
                                                        "exec_die", "health_status: healthy"]


def test_only_running_containers_hold_a_network(engine) -> None:
    # As dockerd (libnetwork has endpoints for running containers only): a network whose containers do not
    # run is removed, and their next start looks for it by name again.
    ok(engine, "network", "create", "gone")
    ok(engine, "network", "create", "side")
    ok(engine, "create", "--name", "made", "--network", "gone", "busybox", "true")
    ok(engine, "run", "--name", "ran", "--network", "gone", "--network-alias", "web", "busybox", "true")
    ok(engine, "run", "-d", "--name", "up", "--network", "side", "busybox", "sleep", "60")
    ok(engine, "network", "connect", "side", "ran")
    try:
        dangling = ok(engine, "network", "ls", "-f", "dangling=true", "--format", "{{.Name}}").split()
        assert "gone" in dangling and "side" not in dangling
        ok(engine, "network", "rm", "gone")
        for name in ("made", "ran"):
            out = cli(engine, "start", name)
            assert out.returncode == 1 and "network gone not found" in out.stderr, out.stderr
        ok(engine, "network", "create", "gone")
        ok(engine, "start", "-a", "ran")
        networks = json.loads(ok(engine, "inspect", "-f", "{{json .NetworkSettings.Networks}}", "ran"))
        assert sorted(networks) == ["gone", "side"] and "web" in networks["gone"]["Aliases"]
        # A prune passes over a network a running container holds, and takes one only stopped ones are on.
        assert ok(engine, "network", "prune", "-f").split() == ["Deleted", "Networks:", "gone"]
        assert "side" in ok(engine, "network", "ls", "--format", "{{.Name}}").split()
    finally:
        ok(engine, "rm", "-f", "made", "ran", "up")
        cli(engine, "network", "rm", "gone")
        ok(engine, "network", "rm", "side")


def test_words_an_api_1_41_client_sends_that_came_later(engine) -> None:
    # dockerd 20.10 waits for the default condition on one it does not know, and knows no `all` in volume prune.
    ok(engine, "create", "--name", "waited", "busybox", "sh", "-c", "exit 5")
    ok(engine, "start", "waited")
    status, _, body = curl(engine, "POST", "/v1.41/containers/waited/wait?condition=bogus")
    assert (status, json.loads(body)["StatusCode"]) == (200, 5)
    assert curl(engine, "POST", "/v1.44/containers/waited/wait?condition=bogus")[0] == 400
    status, _, body = curl(engine, "POST", "/v1.41/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D")
    assert (status, json.loads(body)) == (400, {"message": "invalid filter 'all'"})
    ok(engine, "rm", "waited")


def test_dockerds_words_for_capabilities_groups_and_import_sources(engine) -> None:
    status, _, body = curl(engine, "POST", "/v1.41/images/create?fromSrc=/etc/passwd")
    assert (status, json.loads(body)) == (400, {"message": 'Get "http:///etc/passwd": http: no Host in request URL'})
    sdk = docker.DockerClient(base_url=engine.host)
    try:
        # docker-py sends the capability as written; dockerd names it with its prefix.
        with pytest.raises(docker.errors.APIError, match='unknown capability: "CAP_NOPE"'):
            sdk.containers.run("busybox", "true", cap_add=["NOPE"], remove=True)
        with pytest.raises(docker.errors.APIError, match="Unable to find group nosuchgroup"):
            sdk.containers.run("busybox", "true", group_add=["nosuchgroup"], remove=True)
    finally:
        sdk.close()


def test_empty_maps_a_create_sent_read_back_as_sent(engine) -> None:
    """dockerd keeps `{}` apart from an absent map: a volume's Labels and Options, a network's IPAM.Options."""
    status, _, body = curl(engine, "POST", "/v1.41/volumes/create", '{"Name": "sent", "Labels": {}, "DriverOpts": {}}')
    assert status == 201 and (json.loads(body)["Labels"], json.loads(body)["Options"]) == ({}, {})
    ok(engine, "volume", "create", "bare")  # the docker CLI 28 sends neither
    assert ok(engine, "volume", "inspect", "-f", "{{json .Labels}} {{json .Options}}", "sent", "bare") == \
        "{} {}\nnull null\n"
    status, _, _ = curl(engine, "POST", "/v1.41/networks/create", '{"Name": "ipamopts", "IPAM": {"Options": {}}}')
    assert status == 201
    assert ok(engine, "network", "inspect", "-f", "{{json .IPAM.Options}}", "ipamopts", "bridge") == "{}\nnull\n"
    ok(engine, "network", "rm", "ipamopts")
    ok(engine, "volume", "rm", "sent", "bare")
    # A volume's own directory is 0701, as dockerd's: its `_data` is reachable, what is beside it is not listed.
    ok(engine, "volume", "create", "modes")
    path = ok(engine, "volume", "inspect", "-f", "{{.Mountpoint}}", "modes").strip()
    assert (os.stat(os.path.dirname(path)).st_mode & 0o777, os.stat(path).st_mode & 0o777) == (0o701, 0o755)
    ok(engine, "volume", "rm", "modes")


def test_diff_leaves_out_files_copied_up_as_they_were(engine) -> None:
    """A chown to the owner a file has copies it up unchanged: dockerd's diff does not list it (nor its dir)."""
    ok(engine, "run", "--name", "copier", "--network", "none", "busybox", "sh", "-c",
       "chown 0:0 /etc/passwd; : >> /etc/group; touch /tmp/new")
    assert ok(engine, "diff", "copier") == "C /tmp\nA /tmp/new\n"
    ok(engine, "rm", "copier")


def test_an_exec_killed_with_its_container_answers_once_the_exit_is_recorded(engine) -> None:
    """dockerd: the exec's 137 comes with the container exited, so the next command finds it so."""
    ok(engine, "run", "-d", "--name", "shortlived", "--network", "none", "busybox", "sleep", "1")
    out = cli(engine, "exec", "shortlived", "sleep", "20")
    assert out.returncode == 137
    assert ok(engine, "inspect", "-f", "{{.State.Status}}", "shortlived") == "exited\n"
    late = cli(engine, "exec", "shortlived", "true")
    assert late.returncode == 1 and "is not running" in late.stderr, late
    ok(engine, "rm", "shortlived")


def test_an_execs_console_size_is_its_terminals_from_the_start(engine) -> None:
    ok(engine, "run", "-d", "--name", "sized", "--network", "none", "busybox", "sleep", "60")
    for _ in range(5):
        status, _, body = curl(engine, "POST", "/v1.42/containers/sized/exec",
                               '{"Cmd": ["busybox", "stty", "size"], "Tty": true, "AttachStdout": true, '
                               '"ConsoleSize": [31, 97]}')
        assert status == 201
        reply = _raw(engine, (b"POST /v1.42/exec/%s/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Connection: close\r\nContent-Length: 27\r\n\r\n{\"Detach\":false,\"Tty\":true}")
                     % json.loads(body)["Id"].encode())
        assert reply.endswith(b"31 97\r\n") or b"31 97" in reply.partition(b"\r\n\r\n")[2], reply
    status, _, body = curl(engine, "POST", "/v1.42/containers/sized/exec", '{"Cmd": ["true"], "ConsoleSize": [1]}')
    assert status == 400 and "ConsoleSize" in body
    ok(engine, "rm", "-f", "sized")


def test_resizes_to_zero_and_of_an_ended_exec(engine) -> None:
    """dockerd: a 0x0 size is taken (200); an ended exec's process is gone (404); a stopped container's is 409."""
    ok(engine, "run", "-d", "-t", "--name", "zero", "--network", "none", "busybox", "sleep", "60")
    status, _, body = curl(engine, "POST", "/v1.41/containers/zero/resize?h=0&w=0")
    assert status == 200, body
    status, _, body = curl(engine, "POST", "/v1.41/containers/zero/exec", '{"Cmd": ["true"]}')
    exec_id = json.loads(body)["Id"]
    status, _, body = curl(engine, "POST", f"/v1.41/exec/{exec_id}/start", '{"Detach": true}')
    assert status == 200, body
    deadline = time.monotonic() + 10
    while json.loads(curl(engine, "GET", f"/v1.41/exec/{exec_id}/json")[2])["ExitCode"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, _, body = curl(engine, "POST", f"/v1.41/exec/{exec_id}/resize?h=0&w=0")
    assert (status, json.loads(body)) == (404, {"message": f"process does not exist {exec_id}: not found"})
    ok(engine, "stop", "-t", "0", "zero")
    status, _, body = curl(engine, "POST", f"/v1.41/exec/{exec_id}/resize?h=10&w=10")
    assert status == 409 and "is not running" in body, body
    ok(engine, "rm", "zero")
