"""A create request's filesystems: -v binds and volumes, --mount, --tmpfs, as spec mounts and inspect's Mounts.

Binds (`-v src:dst[:mode]`, the mode read by bindmodes.py) name a host path when the source is absolute
and a volume otherwise; --mount says which by its Type. Host paths become spec binds here; volumes are
resolved by the create step (made now when new, as Docker does) from what `volume_mounts` asks for.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel

from engine.containers import bindmodes
from engine.containers.bindmodes import PROPAGATIONS, BindMode
from engine.containers.gotypes import OPEN, Int64, UInt32
from engine.errors import InvalidArgument


class BindOptionsModel(BaseModel):
    model_config = OPEN
    Propagation: str | None = None
    NonRecursive: bool | None = None
    CreateMountpoint: bool | None = None
    ReadOnlyNonRecursive: bool | None = None
    ReadOnlyForceRecursive: bool | None = None


@dataclass(frozen=True)
class ReadOnly:
    """How read-only binds are made: with every mount below them too where the host can (`recursive`, runc's `rro`),
    and by default (`by_default`: a client of API 1.44 or later), as dockerd 25 and later make them."""
    recursive: bool
    by_default: bool


class TmpfsOptionsModel(BaseModel):
    model_config = OPEN
    SizeBytes: Int64 | None = None
    Mode: UInt32 | None = None
    # [["noexec"], ["uid", "1000"]]: flags alone, tmpfs parameters with their value (API 1.46).
    Options: list[list[str]] | None = None


# What a tmpfs mount may be given in TmpfsOptions.Options: mount flags, and tmpfs's own parameters.
_TMPFS_FLAGS = frozenset({"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
                          "atime", "noatime", "relatime", "norelatime", "strictatime", "diratime", "nodiratime"})
_TMPFS_PARAMETERS = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge"})
# What --tmpfs takes beside them (dockerd's list, less what would turn the tmpfs into a bind).
_TMPFS_SPEC_FLAGS = _TMPFS_FLAGS | {"defaults", "dirsync", "mand", "nomand", "nostrictatime", "private", "rprivate",
                                    "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}


class DriverConfigModel(BaseModel):
    model_config = OPEN
    Name: str | None = None
    Options: dict[str, str] | None = None


class VolumeOptionsModel(BaseModel):
    model_config = OPEN
    NoCopy: bool | None = None
    # Both only for a volume this mount creates, as in dockerd: an existing one is used as it is.
    Labels: dict[str, str] | None = None
    DriverConfig: DriverConfigModel | None = None
    Subpath: str | None = None


class ImageOptionsModel(BaseModel):
    model_config = OPEN
    Subpath: str | None = None


class Mount(BaseModel):
    model_config = OPEN
    Type: str = ""
    Source: str | None = None
    Target: str
    ReadOnly: bool | None = None
    BindOptions: BindOptionsModel | None = None
    TmpfsOptions: TmpfsOptionsModel | None = None
    VolumeOptions: VolumeOptionsModel | None = None
    ImageOptions: ImageOptionsModel | None = None


def _host_bind(spec: str) -> bool:
    """Whether a Binds entry binds a host path (`/src:/dst`), not a volume (`name:/dst`, or `/dst` alone)."""
    return spec.startswith("/") and ":" in spec


def _split_bind(spec: str) -> tuple[str, str, BindMode]:
    """(source, destination, mode); a destination alone (`/data`) is an anonymous volume, its source ""."""
    parts = spec.split(":")
    if len(parts) == 1 and parts[0].startswith("/"):
        return "", parts[0], bindmodes.parse("")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if not parts[1].startswith("/"):
        raise InvalidArgument(f"invalid volume specification: '{spec}': mount path must be absolute")
    return parts[0], parts[1], bindmodes.parse(parts[2] if len(parts) == 3 else "")


def _bind(spec: str, read_only: ReadOnly) -> dict[str, Any]:
    """-v "/host:dst[:mode]": a bind mount of a host path."""
    src, dst, mode = _split_bind(spec)
    if mode.nocopy:
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount config for type \"bind\": "
                              "field VolumeOptions must not be specified")
    options = ["rbind", "ro" if mode.read_only else "rw"]
    if mode.read_only:
        options += read_only_depth(mode.depth, read_only)
    # dockerd's default: nothing mounted on the host under the source later shows in the container.
    options.append(mode.propagation or "rprivate")
    if "\0" in src:
        raise InvalidArgument(f"error while creating mount source path '{src}': embedded null byte")
    return {"type": "bind", "source": src, "destination": dst, "options": options}


def create_bind_sources(binds: list[str]) -> None:
    """Docker makes a missing -v source directory at each start, not at create: a script may create the
    container, then put a file there (a file is bound as it is; --mount refuses a missing source instead)."""
    for spec in binds:
        if not _host_bind(spec):
            continue
        src = _split_bind(spec)[0]
        try:
            if not os.path.lexists(src):
                os.makedirs(src, exist_ok=True)
        except OSError as e:
            raise InvalidArgument(f"error while creating mount source path '{src}': {e}") from None


def read_only_depth(depth: str, read_only: ReadOnly) -> list[str]:
    """The `rro` a read-only bind gets: asked for ("all"), refused ("top"), or the daemon's default ("")."""
    if depth == "all":
        if not read_only.recursive:
            raise InvalidArgument("recursively read-only mounts need mount_setattr, which this host's kernel lacks "
                                  "(Linux 5.12 or later)")
        return ["rro"]
    return ["rro"] if not depth and read_only.recursive and read_only.by_default else []


def _read_only_options(m: Mount, bind: BindOptionsModel, read_only: ReadOnly) -> list[str]:
    """dockerd's checks of the read-only bind options, and the `rro` they ask for."""
    where = 'invalid mount config for type "bind": '
    for name, given in (("ReadOnlyNonRecursive", bind.ReadOnlyNonRecursive),
                        ("ReadOnlyForceRecursive", bind.ReadOnlyForceRecursive)):
        if given and not m.ReadOnly:
            raise InvalidArgument(f"{where}option '{name}' requires 'ReadOnly' to be set")
    if bind.ReadOnlyForceRecursive:
        if bind.ReadOnlyNonRecursive:
            raise InvalidArgument("mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive")
        if bind.Propagation not in (None, "", "rprivate"):
            raise InvalidArgument(f"{where}option 'ReadOnlyForceRecursive' requires 'BindOptions.Propagation' to be "
                                  "'rprivate'")
    if not m.ReadOnly:
        return []
    return read_only_depth("all" if bind.ReadOnlyForceRecursive else "top" if bind.ReadOnlyNonRecursive else "",
                           read_only)


# The options of one type that another type's mount must not carry (dockerd's "field X must not be specified").
_FOREIGN = {"bind": ("VolumeOptions", "TmpfsOptions", "ImageOptions"),
            "volume": ("BindOptions", "TmpfsOptions", "ImageOptions"),
            "tmpfs": ("BindOptions", "VolumeOptions", "ImageOptions", "Source"),
            "image": ("BindOptions", "VolumeOptions", "TmpfsOptions")}


def _check_fields(m: Mount) -> None:
    for name in _FOREIGN.get(m.Type, ()):
        if getattr(m, name):
            raise InvalidArgument(f'invalid mount config for type "{m.Type}": field {name} must not be specified')


def _mount(m: Mount, read_only: ReadOnly) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """A spec mount, or a tmpfs entry (destination, options)."""
    if not m.Type:
        raise InvalidArgument('invalid mount config for type "": mount type unknown')
    _check_fields(m)
    if m.Type == "bind":
        if not m.Source:
            raise InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
        if not os.path.isabs(m.Source):
            raise InvalidArgument(f'invalid mount config for type "bind": invalid mount path: {m.Source!r}')
        bind = m.BindOptions or BindOptionsModel()
        if bind.Propagation and bind.Propagation not in PROPAGATIONS:
            raise InvalidArgument(f'invalid mount config for type "bind": invalid propagation mode: '
                                  f"{bind.Propagation}")
        recursive_read_only = _read_only_options(m, bind, read_only)
        if not os.path.exists(m.Source):
            if not bind.CreateMountpoint:
                raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: '
                                      f"{m.Source}")
            try:
                os.makedirs(m.Source, exist_ok=True)
            except (OSError, ValueError) as e:
                raise InvalidArgument(f"error while creating mount source path '{m.Source}': {e}") from None
        options = ["bind" if bind.NonRecursive else "rbind", "ro" if m.ReadOnly else "rw", *recursive_read_only]
        options.append(bind.Propagation or "rprivate")
        return {"type": "bind", "source": m.Source, "destination": m.Target, "options": options}, None
    if m.Type == "volume":
        return None, None  # volume_mounts() below
    if m.Type == "tmpfs":
        return None, (m.Target, ",".join(_tmpfs_options(m)))
    if m.Type == "image":
        _check_image_mount(m)
        return None, None  # image_mounts() below
    if m.Type in ("npipe", "cluster"):
        raise InvalidArgument(f"mount type {m.Type!r} is not supported by this engine")
    raise InvalidArgument(f'invalid mount config for type "{m.Type}": mount type unknown')


def _tmpfs_options(m: Mount) -> list[str]:
    given = m.TmpfsOptions or TmpfsOptionsModel()
    opts = ["ro"] if m.ReadOnly else []
    if given.SizeBytes:
        opts.append(f"size={given.SizeBytes}")
    if given.Mode:
        opts.append(f"mode={given.Mode:o}")
    for option in given.Options or []:
        # Each a flag or a parameter of tmpfs's own: a comma or an unknown name could smuggle in other options.
        if len(option) == 1 and option[0] in _TMPFS_FLAGS:
            opts.append(option[0])
        elif len(option) == 2 and option[0] in _TMPFS_PARAMETERS and option[1] and "," not in option[1]:
            opts.append(f"{option[0]}={option[1]}")
        else:
            raise InvalidArgument(f'invalid mount config for type "tmpfs": invalid tmpfs option {option!r}')
    return opts


def _check_image_mount(m: Mount) -> None:
    where = 'invalid mount config for type "image": '
    if not m.Source:
        raise InvalidArgument(where + "field Source must not be empty")
    if m.ReadOnly is False and "ReadOnly" in m.model_fields_set:
        raise InvalidArgument(where + "image mounts are read-only: ReadOnly cannot be false")
    subpath = (m.ImageOptions.Subpath if m.ImageOptions else None) or ""
    if "\x00" in subpath or posixpath.isabs(subpath) or posixpath.normpath(subpath or ".").split("/")[0] == "..":
        raise InvalidArgument(where + "subpath must be a relative path within the image")


def image_mounts(mounts: list[Mount]) -> list[dict[str, str]]:
    """The images a container mounts (--mount type=image): {source, destination, subpath}."""
    return [{"source": m.Source or "", "destination": posixpath.normpath(m.Target),
             "subpath": (m.ImageOptions.Subpath if m.ImageOptions else None) or ""}
            for m in mounts if m.Type == "image"]


def _check_tmpfs_spec(spec: str) -> None:
    """--tmpfs DST:OPTIONS: mount flags and tmpfs's parameters only (podman's `tmpcopyup` is no Docker option)."""
    for option in filter(None, spec.split(",")):
        key, eq, value = option.partition("=")
        known = bool(value) and key in _TMPFS_PARAMETERS | {"mpol"} if eq else key in _TMPFS_SPEC_FLAGS
        if not known:
            quoted = " ".join(f'"{part}"' for part in ([key, value] if eq else [key]))
            raise InvalidArgument(f"invalid tmpfs option [{quoted}]")


def _check_subpath(subpath: str, named: bool) -> None:
    """dockerd's checks of VolumeOptions.Subpath at create: a named volume's, and lexically inside it (what is
    there is looked at each start: engine/containers/subpaths.py)."""
    where = 'invalid mount config for type "volume": '
    if not named:
        raise InvalidArgument(where + "must not set Subpath when using anonymous volumes")
    if "\x00" in subpath or posixpath.isabs(subpath) or posixpath.normpath(subpath).split("/")[0] == "..":
        raise InvalidArgument(where + "subpath must be a relative path within the volume")


def _check_duplicates(binds: list[str], mounts: list[Mount], tmpfs: dict[str, str]) -> None:
    """dockerd's: one mount per destination among -v, --mount and --tmpfs."""
    seen: set[str] = set()
    for dst in [_split_bind(b)[1] for b in binds] + [m.Target for m in mounts] + list(tmpfs):
        dst = posixpath.normpath(dst)
        if dst in seen:
            raise InvalidArgument(f"Duplicate mount point: {dst}")
        seen.add(dst)


def host_mounts(binds: list[str], mounts: list[Mount], tmpfs: dict[str, str],
                read_only: ReadOnly) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The runtime's `mounts` (host paths) and `tmpfs` options; volumes are left to volume_mounts()."""
    _check_duplicates(binds, mounts, tmpfs)
    out = [_bind(b, read_only) for b in binds if _host_bind(b)]
    for spec in tmpfs.values():
        _check_tmpfs_spec(spec)
    tmpfs = dict(tmpfs)
    for m in mounts:
        spec_mount, tmp = _mount(m, read_only)
        if spec_mount:
            out.append(spec_mount)
        if tmp:
            tmpfs[tmp[0]] = tmp[1]
    return out, tmpfs


def bind_propagations(binds: list[str], mounts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(host source, propagation) of each host-path bind that asks for a propagation, from a stored HostConfig."""
    out = []
    for b in binds:
        src, _, mode = _split_bind(b)
        if src.startswith("/") and mode.propagation:
            out.append((src, mode.propagation))
    for m in mounts:
        propagation = (m.get("BindOptions") or {}).get("Propagation")
        if m.get("Type", "bind") == "bind" and m.get("Source") and propagation:
            out.append((m["Source"], propagation))
    return out


def explicit_destinations(binds: list[str], mounts: list[Mount], tmpfs: dict[str, str]) -> set[str]:
    """Where a container's own binds, volumes, mounts and tmpfs go."""
    return ({posixpath.normpath(_split_bind(b)[1]) for b in binds} | {posixpath.normpath(m.Target) for m in mounts}
            | {posixpath.normpath(t) for t in tmpfs})


def volume_mounts(binds: list[str], mounts: list[Mount], tmpfs: dict[str, str], volumes: list[str],
                  image_volumes: list[str], inherited: set[str]) -> list[dict[str, Any]]:
    """The volumes a container mounts: named ones (-v name:/dst, --mount type=volume) and anonymous ones
    (--mount without a source, -v /dst as `volumes`, the image's VOLUME, unless a mount at that destination
    is `inherited` by --volumes-from), as {name (None: anonymous), destination, read_only, copy (fill a new
    volume from the image)}, and for --mount's also subpath, and labels, driver and options for a new volume."""
    out: list[dict[str, Any]] = []
    for b in binds:
        if _host_bind(b):
            continue
        name, dst, mode = _split_bind(b)
        if mode.propagation:
            raise InvalidArgument(f"invalid volume specification: '{b}': invalid mount config for type \"volume\": "
                                  "field BindOptions must not be specified")
        if mode.depth:
            raise InvalidArgument(f"mount mode \"{b.split(':')[2]}\" requires a bind mount: invalid volume "
                                  f"specification: '{b}'")
        # dockerd shows a local volume's mode as given, "z" when none was.
        out.append({"name": name or None, "destination": posixpath.normpath(dst), "read_only": mode.read_only,
                    "copy": not mode.nocopy, "mode": b.split(":")[2] if b.count(":") == 2 else "z"})
    for m in mounts:
        if m.Type != "volume":
            continue
        if not posixpath.isabs(m.Target):
            raise InvalidArgument(f'invalid mount config for type "volume": invalid mount path: \'{m.Target}\' '
                                  "mount path must be absolute")
        if not m.Source and m.ReadOnly:
            # A new empty volume nobody can write to: dockerd refuses it.
            raise InvalidArgument('invalid mount config for type "volume": must not set ReadOnly mode when using '
                                  "anonymous volumes")
        given = m.VolumeOptions or VolumeOptionsModel()
        if given.Subpath:
            _check_subpath(given.Subpath, named=bool(m.Source))
        driver = given.DriverConfig or DriverConfigModel()
        # A subpath's content is the volume's own: nothing of the image is copied into it.
        out.append({"name": m.Source or None, "destination": posixpath.normpath(m.Target),
                    "read_only": bool(m.ReadOnly), "copy": not given.NoCopy and not given.Subpath,
                    "subpath": given.Subpath or None, "labels": given.Labels or {}, "driver": driver.Name or "local",
                    "options": driver.Options or {}, "mode": "z"})
    taken = explicit_destinations(binds, mounts, tmpfs) | inherited
    for dst in volumes + image_volumes:
        if not posixpath.isabs(dst):
            raise InvalidArgument(f"invalid volume specification: '{dst}': mount path must be absolute")
        dst = posixpath.normpath(dst)
        if dst not in taken:
            taken.add(dst)
            out.append({"name": None, "destination": dst, "read_only": False, "copy": True, "mode": ""})
    return out


def inspect_mounts(host_config: dict[str, Any], volumes: list[dict[str, Any]],
                   mountpoint: Callable[[str], str], binds_from: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A container's bind mounts and volumes (`binds_from`: the binds --volumes-from copied), in inspect's
    Mounts shape."""
    out = [{"Type": "volume", "Name": v["name"], "Source": mountpoint(v["name"]), "Destination": v["destination"],
            "Driver": "local", "Mode": v.get("mode", "ro" if v["read_only"] else "z"), "RW": not v["read_only"],
            "Propagation": ""} for v in volumes]
    for b in host_config.get("Binds") or []:
        if not _host_bind(b):
            continue  # a volume: listed above
        parts = b.split(":")
        mode = parts[2] if len(parts) == 3 else ""
        out.append({"Type": "bind", "Source": posixpath.normpath(parts[0]),
                    "Destination": posixpath.normpath(parts[1]), "Mode": mode, "RW": not bindmodes.is_read_only(mode),
                    "Propagation": bindmodes.parse(mode).propagation or "rprivate"})
    for m in host_config.get("Mounts") or []:
        if m.get("Type") == "bind":
            propagation = (m.get("BindOptions") or {}).get("Propagation") or "rprivate"
            out.append({"Type": "bind", "Source": m.get("Source"), "Destination": m.get("Target"), "Mode": "",
                        "RW": not m.get("ReadOnly"), "Propagation": propagation})
        elif m.get("Type") == "tmpfs":
            out.append({"Type": "tmpfs", "Source": "", "Destination": m.get("Target"), "Mode": "",
                        "RW": not m.get("ReadOnly"), "Propagation": ""})
        elif m.get("Type") == "image":
            out.append({"Type": "image", "Source": m.get("Source"), "Destination": m.get("Target"), "Mode": "",
                        "RW": False, "Propagation": "rprivate"})
    for b in binds_from:
        out.append({"Type": "bind", "Source": b["source"], "Destination": b["destination"], "Mode": "",
                    "RW": not b["read_only"], "Propagation": b["propagation"]})
    return out
