"""What a pod and its containers ask for is what they get: users, capabilities, seccomp, namespaces,
resources, mounts, devices and sysctls, read back from inside the container."""
from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from cri_api.v1 import api_pb2 as cri

from tests.fixtures.cri import CRI

pytestmark = pytest.mark.timeout(300)


def _sh(c: CRI, cid: str, script: str) -> str:
    out = c.runtime.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script], timeout=20))
    assert out.exit_code == 0, (script, out.stdout, out.stderr)
    return out.stdout.decode()


def _status_field(text: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(name + ":"))


def test_security_context_and_resources(cri_service: CRI, tmp_path: Path) -> None:
    c = cri_service
    c.pull("busybox")
    pod = c.pod_config("secure")
    pod.linux.sysctls["kernel.shm_rmid_forced"] = "1"
    pod.linux.security_context.namespace_options.pid = cri.POD
    pod_id = c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pod)).pod_sandbox_id
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from the host\n")
    config = c.container_config("locked", ["sleep", "300"])
    sc = config.linux.security_context
    sc.run_as_user.value = 1000
    sc.run_as_group.value = 2000
    sc.supplemental_groups.extend([3000])
    sc.readonly_rootfs = True
    sc.no_new_privs = True
    sc.capabilities.drop_capabilities.extend(["ALL"])
    sc.capabilities.add_capabilities.extend(["NET_RAW"])
    sc.seccomp.profile_type = cri.SecurityProfile.RuntimeDefault
    sc.masked_paths.extend(["/proc/version"])
    sc.readonly_paths.extend(["/proc/sys"])
    sc.namespace_options.pid = cri.POD
    config.linux.resources.memory_limit_in_bytes = 96 * 1024 * 1024
    config.linux.resources.cpu_shares = 512
    config.linux.resources.oom_score_adj = 500
    config.mounts.append(cri.Mount(container_path="/data", host_path=str(shared), readonly=True,
                                   propagation=cri.PROPAGATION_HOST_TO_CONTAINER))
    config.devices.append(cri.Device(container_path="/dev/mynull", host_path="/dev/null", permissions="rw"))
    cid = c.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                               sandbox_config=pod)).container_id
    c.runtime.StartContainer(cri.StartContainerRequest(container_id=cid))

    assert _sh(c, cid, "id -u; id -g").split() == ["1000", "2000"]
    assert "3000" in _sh(c, cid, "id -G").split()
    assert "Read-only" in _sh(c, cid, "touch /x 2>&1 || true")
    status = _sh(c, cid, "cat /proc/self/status")
    assert _status_field(status, "NoNewPrivs") == "1"
    assert _status_field(status, "Seccomp") == "2"
    assert int(_status_field(status, "CapBnd"), 16) == 1 << 13  # CAP_NET_RAW alone
    assert _sh(c, cid, "cat /proc/self/oom_score_adj").strip() == "500"
    assert _sh(c, cid, "cat /data/hello") == "from the host\n"
    assert "Read-only" in _sh(c, cid, "touch /data/x 2>&1 || true")
    assert _sh(c, cid, "wc -c < /proc/version").strip() == "0"
    assert _sh(c, cid, "echo ok > /dev/mynull && echo written").strip() == "written"
    # The pod's PID namespace is shared: the pause process is there; the pod's IPC sysctl applies.
    assert "/pause" in _sh(c, cid, "cat /proc/1/cmdline | tr '\\0' ' '")
    assert _sh(c, cid, "cat /proc/sys/kernel/shm_rmid_forced").strip() == "1"
    limits = _sh(c, cid, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares "
                         "2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.weight").split()
    assert limits[0] == str(96 * 1024 * 1024)

    unconfined = c.container_config("free", ["sleep", "300"])
    unconfined.linux.security_context.seccomp.profile_type = cri.SecurityProfile.Unconfined
    unconfined.linux.security_context.run_as_username = "nobody"
    free = c.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=unconfined,
                                                                sandbox_config=pod)).container_id
    c.runtime.StartContainer(cri.StartContainerRequest(container_id=free))
    status = _sh(c, free, "cat /proc/self/status")
    assert _status_field(status, "Seccomp") == "0"
    assert _sh(c, free, "id -u").strip() == "65534"
    # Each container has its own mount namespace but the pod's hostname and /dev/shm.
    _sh(c, cid, "echo shared > /dev/shm/mark")
    assert _sh(c, free, "cat /dev/shm/mark") == "shared\n"


def test_seccomp_follows_what_is_asked_and_nothing_asked_is_unconfined(cri_service: CRI) -> None:
    """api.proto: the deprecated path's default "" is unconfined; a present profile field rules, even all-default."""
    c = cri_service
    c.pull("busybox")
    pod_id, pod = c.run_pod("seccomp")
    cases: list[tuple[str, str, object]] = [
        ("unset", "0", lambda sc: None),
        ("legacy-default", "2", lambda sc: setattr(sc, "seccomp_profile_path", "runtime/default")),
        ("legacy-unconfined", "0", lambda sc: setattr(sc, "seccomp_profile_path", "unconfined")),
        ("runtime-default", "2", lambda sc: sc.seccomp.SetInParent()),
        ("field-over-legacy", "0", lambda sc: (setattr(sc, "seccomp_profile_path", "runtime/default"),
                                                setattr(sc.seccomp, "profile_type", cri.SecurityProfile.Unconfined))),
    ]
    for name, mode, mutate in cases:
        config = c.container_config(name, ["sleep", "300"])
        mutate(config.linux.security_context)  # type: ignore[operator]
        cid = c.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                                   sandbox_config=pod)).container_id
        c.runtime.StartContainer(cri.StartContainerRequest(container_id=cid))
        assert _status_field(_sh(c, cid, "cat /proc/self/status"), "Seccomp") == mode, name


def test_options_that_cannot_be_honoured_are_refused(cri_service: CRI) -> None:
    c = cri_service
    c.pull("busybox")
    pod_id, pod = c.run_pod("refusals")
    for mutate, word in [
        (lambda cfg: cfg.linux.resources.hugepage_limits.append(cri.HugepageLimit(page_size="2MB", limit=1)),
         "hugepage"),
        (lambda cfg: cfg.linux.security_context.selinux_options.CopyFrom(cri.SELinuxOption(type="spc_t")),
         "selinux"),
        (lambda cfg: cfg.linux.security_context.capabilities.add_ambient_capabilities.append("NET_RAW"),
         "ambient"),
        (lambda cfg: cfg.mounts.append(cri.Mount(container_path="/x", host_path="/nonexistent-path")),
         "does not exist"),
        (lambda cfg: cfg.CDI_devices.append(cri.CDIDevice(name="vendor.com/gpu=0")), "CDI"),
    ]:
        config = c.container_config("refused", ["true"])
        mutate(config)
        with pytest.raises(grpc.RpcError) as e:
            c.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                                 sandbox_config=pod))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, word  # type: ignore[attr-defined]
        assert word.lower() in e.value.details().lower()  # type: ignore[attr-defined]
    # A refused create reserves nothing: the same name works once the config is right.
    c.start_container(pod_id, pod, "refused", ["true"])
    assert os.path.isdir(c.daemon.base)
