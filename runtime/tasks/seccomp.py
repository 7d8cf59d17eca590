"""Seccomp: the Docker-equivalent default profile and Docker-format profile rendering.

Profiles are kept in Docker's format (rules that apply only for some architectures,
capabilities or kernels) and rendered for one container into the OCI `linux.seccomp`
form runc takes. The default profile is an allow-list: anything not named fails with
EPERM, like Docker's. User profiles (a path or the JSON itself) go through the same
rendering, so `includes`/`excludes` in them behave as they do under Docker.
"""
from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Iterable
from typing import Any

from runtime.errors import InvalidArgument

_ARCH_ALIASES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# The native libseccomp architecture and the compat ones its kernel can also run.
_ARCH_MAP = {
    "amd64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "arm64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}

ENOSYS = 38
EPERM = 1
AF_VSOCK = 40
# Every CLONE_NEW* flag: without CAP_SYS_ADMIN clone() may not create namespaces.
_CLONE_NEW_MASK = 0x7E020000

# Syscalls every container may make, grouped by what they are for. Names the local
# libseccomp does not know (newer calls, or another architecture's) are skipped by runc.
_ALLOWED: dict[str, tuple[str, ...]] = {
    "files": (
        "access", "faccessat", "faccessat2", "open", "openat", "openat2", "creat", "close", "close_range",
        "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2",
        "lseek", "_llseek", "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock", "fsync", "fdatasync", "sync",
        "syncfs", "sync_file_range", "fallocate", "fadvise64", "fadvise64_64", "readahead", "truncate",
        "truncate64", "ftruncate", "ftruncate64", "sendfile", "sendfile64", "copy_file_range", "splice",
        "tee", "vmsplice", "ioctl", "name_to_handle_at", "cachestat",
    ),
    "metadata": (
        "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx",
        "statfs", "statfs64", "fstatfs", "fstatfs64", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
        "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32", "utime", "utimes", "utimensat",
        "utimensat_time64", "futimesat", "umask", "getxattr", "lgetxattr", "fgetxattr", "setxattr",
        "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
        "fremovexattr",
    ),
    "directories": (
        "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link",
        "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "mknod", "mknodat",
        "getdents", "getdents64",
    ),
    "memory": (
        "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
        "mlock2", "mlockall", "munlock", "munlockall", "membarrier", "memfd_create", "memfd_secret",
        "remap_file_pages", "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack",
    ),
    "processes": (
        "execve", "execveat", "fork", "vfork", "exit", "exit_group", "wait4", "waitid", "waitpid",
        "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid", "prctl",
        "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "restart_syscall",
        "get_thread_area", "set_thread_area", "getrlimit", "ugetrlimit", "setrlimit", "prlimit64",
        "getrusage", "times", "getpriority", "setpriority", "ioprio_get", "ioprio_set", "getcpu",
        "capget", "capset", "seccomp", "pidfd_open", "pidfd_send_signal", "process_mrelease",
        "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    ),
    "identity": (
        "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
        "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32", "setuid",
        "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32", "setresuid",
        "setresuid32", "setresgid", "setresgid32", "setfsuid", "setfsuid32", "setfsgid", "setfsgid32",
        "setgroups", "setgroups32",
    ),
    "scheduling": (
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
        "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
        "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
        "sched_rr_get_interval_time64",
    ),
    "signals": (
        "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
        "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo",
        "rt_tgsigqueueinfo", "sigaltstack", "sigreturn", "sigprocmask", "signalfd", "signalfd4", "pause",
    ),
    "time": (
        "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
        "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "adjtimex", "clock_adjtime",
        "clock_adjtime64", "alarm", "getitimer", "setitimer", "timer_create", "timer_delete",
        "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
        "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
    ),
    "waiting": (
        "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
        "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "futex", "futex_time64", "futex_waitv",
        "futex_wait", "futex_wake", "futex_requeue", "inotify_init", "inotify_init1", "inotify_add_watch",
        "inotify_rm_watch", "fanotify_mark", "pipe", "pipe2",
    ),
    "aio": (
        "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
        "io_pgetevents_time64",
    ),
    "network": (
        "socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4", "getsockname",
        "getpeername", "getsockopt", "setsockopt", "shutdown", "send", "sendto", "sendmsg", "sendmmsg",
        "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
    ),
    "ipc": (
        "ipc", "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semtimedop_time64",
        "semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_notify",
        "mq_getsetattr", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive",
        "mq_timedreceive_time64",
    ),
    "system_info": ("uname", "sysinfo", "getrandom"),
}

# Syscalls a capability unlocks (Docker grants them only when the container holds it).
_BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
        "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog",
        "umount", "umount2", "unshare",
    ),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    # userfaultfd (its stalls make kernel races winnable) and pivot_root are in no rule: Docker allows them to none.
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
                       "ptrace"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
}


def _allow(names: Iterable[str], **conditions: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"names": sorted(set(names)), "action": "SCMP_ACT_ALLOW"}
    rule.update({k: v for k, v in conditions.items() if v})
    return rule


def _arg(index: int, value: int, op: str, value_two: int = 0) -> dict[str, Any]:
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def docker_default() -> dict[str, Any]:
    """The default profile in Docker's (conditional) format."""
    rules = [_allow(name for group in _ALLOWED.values() for name in group)]
    # Tracing a process in one's own container is harmless since 4.8, which closed the ptrace-based seccomp
    # bypass; comparing, stealing fds of and advising on another process still need CAP_SYS_PTRACE.
    rules.append(_allow(("process_vm_readv", "process_vm_writev", "ptrace"), includes={"minKernel": "4.8"}))
    # Only the personalities programs really switch to (Linux, 32-bit, uname26) or query.
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        rules.append(_allow(("personality",), args=[_arg(0, persona, "SCMP_CMP_EQ")]))
    # vsock would reach the hypervisor's host side, which no container should.
    rules.append(_allow(("socket",), args=[_arg(0, AF_VSOCK, "SCMP_CMP_NE")]))
    rules.append(_allow(("arch_prctl", "modify_ldt"), includes={"arches": ["amd64", "x32", "x86"]}))
    rules.append(_allow(("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                         "cacheflush", "set_tls"), includes={"arches": ["arm", "arm64"]}))
    # Plain fork/thread creation is fine; creating namespaces needs CAP_SYS_ADMIN.
    rules.append(_allow(("clone",), args=[_arg(0, _CLONE_NEW_MASK, "SCMP_CMP_MASKED_EQ")],
                        excludes={"caps": ["CAP_SYS_ADMIN"]}))
    # clone3's flags live in memory seccomp cannot inspect: answer ENOSYS so libc falls
    # back to clone(), whose flags the rule above can check.
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    for cap, names in _BY_CAPABILITY.items():
        rules.append(_allow(names, includes={"caps": [cap]}))
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [{"architecture": a[0], "subArchitectures": a[1:]} for a in _ARCH_MAP.values()],
        "syscalls": rules,
    }


def native_arch(arch: str | None = None) -> str:
    """Go-style architecture name ("amd64", "arm64") of `arch` or of this host."""
    name = arch or platform.machine()
    try:
        return _ARCH_ALIASES[name]
    except KeyError:
        raise InvalidArgument(f"seccomp profiles are not supported on architecture {name!r}") from None


def _kernel_version(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    if m is None:
        raise InvalidArgument(f"cannot parse kernel version {release!r}")
    return int(m.group(1)), int(m.group(2))


def _applies(rule: dict[str, Any], arch: str, caps: frozenset[str], kernel: tuple[int, int]) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("minKernel") and kernel < _kernel_version(inc["minKernel"]):
        return False
    if exc.get("arches") and arch in exc["arches"]:
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    if exc.get("minKernel") and kernel >= _kernel_version(exc["minKernel"]):
        return False
    return True


def render(profile: dict[str, Any], arch: str | None, caps: Iterable[str],
           kernel_release: str | None = None) -> dict[str, Any]:
    """A Docker-format profile as OCI linux.seccomp for one container's arch and capabilities."""
    if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
        raise InvalidArgument("seccomp profile must be a JSON object with a defaultAction")
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("seccomp profile gives both architectures and archMap")
    goarch = native_arch(arch)
    kernel = _kernel_version(kernel_release or os.uname().release)
    capset = frozenset(caps)

    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if profile.get("archMap"):
        native = _ARCH_MAP[goarch][0]
        for entry in profile["archMap"]:
            if entry.get("architecture") == native:
                out["architectures"] = [native, *entry.get("subArchitectures", [])]
    elif profile.get("architectures"):
        out["architectures"] = list(profile["architectures"])
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]

    syscalls = []
    for rule in profile.get("syscalls") or []:
        if not isinstance(rule, dict) or not isinstance(rule.get("action"), str):
            raise InvalidArgument(f"seccomp rule without an action: {rule!r}")
        if not _applies(rule, goarch, capset, kernel):
            continue
        if rule.get("name") and rule.get("names"):
            raise InvalidArgument("'name' and 'names' were specified in the seccomp profile, use either 'name' or "
                                  "'names'")
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names:
            raise InvalidArgument(f"seccomp rule without syscall names: {rule!r}")
        oci: dict[str, Any] = {"names": list(names), "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            oci["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            oci["args"] = rule["args"]
        syscalls.append(oci)
    out["syscalls"] = syscalls
    return out


def default_profile(arch: str | None, caps: Iterable[str]) -> dict[str, Any]:
    """Docker's default seccomp profile as OCI linux.seccomp for `arch` (None: this host)."""
    return render(docker_default(), arch, caps)


def load_profile(source: str, arch: str | None, caps: Iterable[str]) -> dict[str, Any] | None:
    """A Docker-format profile given as its JSON text or as a path to it, rendered; None (no filter) for one
    with neither a default action nor rules, as Docker reads `{}`."""
    text = source
    if not source.lstrip().startswith("{"):
        try:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            raise InvalidArgument(f"cannot read seccomp profile {source}: {e.strerror}") from e
        except ValueError as e:  # a NUL byte in the path
            raise InvalidArgument(f"cannot read seccomp profile {source!r}: {e}") from e
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"seccomp profile is not valid JSON: {e}") from e
    if isinstance(profile, dict) and not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    return render(profile, arch, caps)
