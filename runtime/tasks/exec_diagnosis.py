"""Why the kernel will refuse to exec a container's program, said before runc tries.

runc reports a failed execve of the container's process only as the errno's text ("exec /app: exec format
error", "exec /run.sh: no such file or directory", the latter even when /run.sh is right there). The
runtime holds the rootfs, so it can say which of the usual causes it is, reading the file as the kernel
would:

- an ELF binary for another architecture (e_machine against the host's own);
- an ELF binary whose dynamic loader (PT_INTERP) is not in the image;
- a script whose `#!` line ends in a carriage return (CRLF line ends: the kernel looks for "/bin/sh\\r");
- a script whose interpreter is not in the image (or is itself one of the above);
- a file that is neither ELF nor a `#!` script.

A file no one may execute is left to runc, whose "permission denied" is the whole story.

Every path is resolved inside the rootfs (runtime.tasks.users.open_in_root), never on the host. A program
a binfmt_misc handler would run (qemu-user for foreign binaries) is left alone, and so is anything not
certain: None means "let runc try".
"""
from __future__ import annotations

import functools
import os
import re
import stat
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

from runtime.tasks.users import open_in_root

_ENOEXEC = "exec format error"
_ENOENT = "no such file or directory"
# The kernel reads this much of a file to pick a loader; a #! line longer than it is cut there.
_HEAD = 256
# The kernel follows #! interpreters this deep (BINPRM_MAX_RECURSION).
_MAX_DEPTH = 4
_BINFMT = Path("/proc/sys/fs/binfmt_misc")

# ELF e_machine -> the platform name an image would carry.
_MACHINES = {3: "386", 8: "mips", 20: "ppc", 21: "ppc64le", 22: "s390x", 40: "arm", 62: "amd64", 183: "arm64",
             243: "riscv64", 258: "loong64"}
# 64-bit hosts that also run their 32-bit siblings' binaries.
_COMPATIBLE = {62: {3}, 183: {40}}


def diagnose(rootfs: str, process: dict[str, object], mounts: Iterable[str] = ()) -> str | None:
    """runc's words for the failing exec of the OCI `process`, then why; None if it should run.

    `mounts` are the spec's mount destinations: what lies under one (an init bind-mounted over a placeholder,
    an interpreter in a volume) is only known once runc has mounted it, so it is not judged here.
    """
    covered = tuple(m.rstrip("/") for m in mounts if m.startswith("/"))
    args = process.get("args")
    if not isinstance(args, list) or not args or not isinstance(args[0], str) or not args[0]:
        return None
    raw_env = process.get("env")
    env = [e for e in raw_env if isinstance(e, str)] if isinstance(raw_env, list) else []
    cwd = process.get("cwd")
    path = _locate(rootfs, args[0], env, cwd if isinstance(cwd, str) else "/")
    if path is None:
        return None  # runc says "executable file not found" itself
    try:
        why = _why(rootfs, path, 0, covered)
    except _Mounted:
        return None
    if why is None:
        return None
    errno_text, reason = why
    return f"exec {args[0]}: {errno_text}: {reason}"


@functools.cache
def host_machine() -> int | None:
    """The ELF machine of the binary running us: what this host executes natively."""
    head = _read_host(sys.executable)
    return _elf_machine(head) if head else None


def _read_host(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(64)
    except OSError:
        return b""


def _locate(rootfs: str, arg0: str, env: list[str], cwd: str) -> str | None:
    if "/" in arg0:
        path = arg0 if arg0.startswith("/") else os.path.join(cwd, arg0)
        return path if _is_file(rootfs, path) else None
    search = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                                                  "/usr/bin:/sbin:/bin")
    for d in search.split(":"):
        candidate = os.path.join(d or ".", arg0)
        if _is_file(rootfs, candidate):
            return candidate
    return None


def _open(rootfs: str, path: str) -> int | None:
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return open_in_root(root_fd, path)
    except OSError:
        return None
    finally:
        os.close(root_fd)


def _is_file(rootfs: str, path: str) -> bool:
    fd = _open(rootfs, path)
    if fd is None:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _executable(rootfs: str, path: str) -> bool:
    fd = _open(rootfs, path)
    if fd is None:
        return False
    try:
        return bool(os.fstat(fd).st_mode & 0o111)
    finally:
        os.close(fd)


def _read(rootfs: str, path: str, offset: int, size: int) -> bytes | None:
    fd = _open(rootfs, path)
    if fd is None:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with open(f"/proc/self/fd/{fd}", "rb") as f:
            f.seek(offset)
            return f.read(size)
    except OSError:
        return None
    finally:
        os.close(fd)


class _Mounted(Exception):
    """A path the diagnosis needs lies under one of the container's mounts."""


def _check_mounts(path: str, covered: tuple[str, ...]) -> None:
    normal = os.path.normpath(path)
    if any(normal == m or normal.startswith(m + "/") or not m for m in covered):
        raise _Mounted(path)


def _why(rootfs: str, path: str, depth: int, covered: tuple[str, ...]) -> tuple[str, str] | None:
    _check_mounts(path, covered)
    if not _executable(rootfs, path):
        return None  # runc's "permission denied" says it all (and makes it exit code 126, as dockerd's)
    head = _read(rootfs, path, 0, _HEAD)
    if head is None or depth > _MAX_DEPTH or _binfmt_handles(path, head):
        return None
    if head.startswith(b"\x7fELF"):
        return _elf(rootfs, path, head, covered)
    if head.startswith(b"#!"):
        return _script(rootfs, path, head, depth, covered)
    if not head:
        return _ENOEXEC, f"{path} is an empty file, not a program"
    shown = head[:16].decode("ascii", errors="replace")
    return _ENOEXEC, (f"{path} is neither an ELF binary nor a script starting with #! (it starts with "
                      f"{shown!r}); if it is a script, make its first line #! and the interpreter's path, "
                      f"e.g. #!/bin/sh")


def _elf(rootfs: str, path: str, head: bytes, covered: tuple[str, ...]) -> tuple[str, str] | None:
    machine = _elf_machine(head)
    if machine is None:
        return _ENOEXEC, f"{path} starts like an ELF file but its header is not a valid ELF header"
    host = host_machine()
    if host is not None and machine != host and machine not in _COMPATIBLE.get(host, set()):
        return _ENOEXEC, (f"{path} is a binary for {_arch(machine)} and this host runs {_arch(host)}: the image "
                          f"was built for another platform; pull or build it for linux/{_MACHINES.get(host, '?')} "
                          f"(docker run --platform, docker build --platform), or register a binfmt_misc emulator")
    interp = _interpreter(rootfs, path, head)
    if interp is not None:
        _check_mounts(interp, covered)
    if interp is not None and not _is_file(rootfs, interp):
        return _ENOENT, (f"{path} exists, but its dynamic loader {interp} (ELF PT_INTERP) is not in the image: "
                         f"add the C library the binary was linked against (glibc, musl) or link it statically")
    return None


def _elf_machine(head: bytes) -> int | None:
    if len(head) < 20 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    order = "<" if head[5] == 1 else ">"
    machine: int = struct.unpack_from(order + "H", head, 18)[0]
    return machine


def interpreter(rootfs: str, path: str) -> str | None:
    """The dynamic loader an ELF binary in the rootfs asks for (PT_INTERP), or None."""
    head = _read(rootfs, path, 0, 64)
    return _interpreter(rootfs, path, head) if head and _elf_machine(head) is not None else None


def _interpreter(rootfs: str, path: str, head: bytes) -> str | None:
    """PT_INTERP's path, or None for a static binary (or a header too odd to read)."""
    is64, order = head[4] == 2, "<" if head[5] == 1 else ">"
    header = _read(rootfs, path, 0, 64)
    if header is None or len(header) < (64 if is64 else 52):
        return None
    if is64:
        phoff, = struct.unpack_from(order + "Q", header, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
    else:
        phoff, = struct.unpack_from(order + "I", header, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", header, 42)
    table = _read(rootfs, path, phoff, phentsize * min(phnum, 256))
    if table is None:
        return None
    for i in range(len(table) // phentsize if phentsize else 0):
        entry = table[i * phentsize:(i + 1) * phentsize]
        if struct.unpack_from(order + "I", entry, 0)[0] != 3:  # PT_INTERP
            continue
        if is64:
            offset, = struct.unpack_from(order + "Q", entry, 8)
            size, = struct.unpack_from(order + "Q", entry, 32)
        else:
            offset, = struct.unpack_from(order + "I", entry, 4)
            size, = struct.unpack_from(order + "I", entry, 16)
        raw = _read(rootfs, path, offset, min(size, 4096))
        return raw.split(b"\0", 1)[0].decode(errors="replace") if raw else None
    return None


def _script(rootfs: str, path: str, head: bytes, depth: int, covered: tuple[str, ...]) -> tuple[str, str] | None:
    line = head[2:].split(b"\n", 1)[0]
    # The kernel's own split: the interpreter is the first word after #!, blanks are spaces and tabs only
    # (a carriage return stays part of the name).
    interp_raw = re.split(rb"[ \t]", line.lstrip(b" \t"), maxsplit=1)[0]
    if not interp_raw:
        return _ENOEXEC, f"{path} starts with #! but names no interpreter"
    interp = interp_raw.decode(errors="replace")
    _check_mounts(interp, covered)
    if interp_raw.endswith(b"\r") and not _is_file(rootfs, interp):
        return _ENOENT, (f"{path} has Windows (CRLF) line ends: its #! line asks for the interpreter "
                         f"{interp.rstrip(chr(13))!r} followed by a carriage return, which does not exist; convert "
                         f"the script to LF line ends (dos2unix, or sed -i 's/\\r$//') or set "
                         f"`* text eol=lf` in .gitattributes")
    if not _is_file(rootfs, interp):
        return _ENOENT, (f"{path} exists, but its interpreter {interp} (from its #! line) is not in the image: "
                         f"install it in the image or change the #! line")
    inner = _why(rootfs, interp, depth + 1, covered)
    if inner is None:
        return None
    return inner[0], f"{path} is run by its interpreter {interp}, and {inner[1]}"


def _arch(machine: int) -> str:
    name = _MACHINES.get(machine)
    return f"{name} (ELF machine {machine})" if name else f"ELF machine {machine}"


def _binfmt_handles(path: str, head: bytes) -> bool:
    """Whether an enabled binfmt_misc entry (qemu-user, a JVM...) would take this file."""
    try:
        if (_BINFMT / "status").read_text().strip() != "enabled":
            return False
        entries = [p for p in _BINFMT.iterdir() if p.name not in ("status", "register")]
    except OSError:
        return False
    for entry in entries:
        try:
            fields = dict(line.split(" ", 1) for line in entry.read_text().splitlines()[1:] if " " in line)
            enabled = entry.read_text().startswith("enabled")
        except (OSError, ValueError):
            continue
        if not enabled:
            continue
        if "extension" in fields:
            if path.endswith("." + fields["extension"].strip()):
                return True
            continue
        offset = int(fields.get("offset", "0").strip() or 0)
        magic = bytes.fromhex(fields.get("magic", "").strip())
        mask = bytes.fromhex(fields["mask"].strip()) if "mask" in fields else b"\xff" * len(magic)
        chunk = head[offset:offset + len(magic)]
        if magic and len(chunk) == len(magic) and all(c & m == g & m for c, g, m in zip(chunk, magic, mask)):
            return True
    return False
