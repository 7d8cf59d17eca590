"""A container's LogConfig: checked against its driver, with the daemon's defaults (daemon.json's `log-driver`
and `log-opts`) filled in as dockerd fills them, then the engine's own defaults (rotation) applied."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from engine.errors import InvalidArgument
from engine.logs import attrs, fluentd, gelf, journald, syslog

JSON_FILE, LOCAL, NONE, SYSLOG, GELF = "json-file", "local", "none", syslog.NAME, gelf.NAME
FLUENTD, JOURNALD = fluentd.NAME, journald.NAME
DRIVERS = (JSON_FILE, LOCAL, NONE, SYSLOG, GELF, FLUENTD, JOURNALD)
# What `docker info` lists under Plugins.Log, as dockerd lists its drivers: sorted, without none.
LISTED = tuple(sorted(d for d in DRIVERS if d != NONE))
# Drivers that send elsewhere, which `docker logs` cannot read: dockerd's dual logging keeps a local cache
# beside them (the local format, in `container-cached.log`), unless `cache-disabled` says not to. dockerd keeps
# none for journald, which it reads back from the journal; here the cache gives `docker logs` the same lines.
REMOTE = (SYSLOG, GELF, FLUENTD, JOURNALD)
_CACHE = {"cache-disabled", "cache-max-size", "cache-max-file", "cache-compress"}

# Options each driver takes, as dockerd's validators list them.
_OPTIONS = {
    JSON_FILE: {"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
    LOCAL: {"max-file", "max-size", "compress"},
    NONE: set(),
    SYSLOG: syslog.OPTIONS | _CACHE,
    GELF: gelf.OPTIONS | _CACHE,
    FLUENTD: fluentd.OPTIONS | _CACHE,
    JOURNALD: journald.OPTIONS | _CACHE,
}
# Options dockerd takes for every driver but none. `mode=non-blocking` is what this engine does whatever the
# mode: conmon writes each line to disk as it comes and the driver's files are made from there, so the
# container never waits on a driver and no line is dropped; `max-buffer-size` bounds a buffer in memory,
# and there is none to bound.
_BUILT_IN = {"mode", "max-buffer-size"}
_MODES = ("", "blocking", "non-blocking")
_RAM_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")

# dockerd's local driver rotates by default; the same bound applies to json-file here unless the user or
# daemon.json sets one, so a chatty container cannot fill the disk.
DEFAULT_ROTATION = {"max-size": "20m", "max-file": "5"}
_LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5", "compress": "true"}
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_TRUE, _FALSE = {"1", "t", "T", "true", "TRUE", "True"}, {"0", "f", "F", "false", "FALSE", "False"}


@dataclass(frozen=True)
class LogSettings:
    driver: str
    options: dict[str, str] = field(default_factory=dict)
    max_size: int | None = None   # bytes per file; None: one file that grows
    max_file: int = 1
    compress: bool = False
    cache_disabled: bool = False
    # The options as configured (the container's over the daemon's), without the defaults the engine fills in:
    # what inspect shows, as dockerd shows them.
    configured: dict[str, str] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return self.driver in REMOTE

    @property
    def readable(self) -> bool:
        return self.driver != NONE and not self.cache_disabled


def human_size(text: str) -> int:
    """go-units' FromHumanSize, which json-file's max-size is read with: decimal multiples."""
    m = _SIZE.match(text)
    if m is None:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _DECIMAL[(m.group(2) or "").lower()])


def _bool(name: str, text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidArgument(f'strconv.ParseBool: parsing "{text}": invalid syntax (log opt {name})')


def check(driver: str, options: dict[str, str]) -> None:
    """What dockerd refuses at create: an unknown driver or an option the driver does not take."""
    if driver not in DRIVERS:
        raise InvalidArgument(f"logger: no log driver named '{driver}' is registered")
    if driver != NONE:
        _check_mode(options)
    for key in options:
        if key not in _OPTIONS[driver] and (driver == NONE or key not in _BUILT_IN):
            if driver == GELF:
                raise InvalidArgument(f'unknown log opt "{key}" for gelf log driver')
            raise InvalidArgument(f"unknown log opt '{key}' for {driver} log driver")
    if driver == SYSLOG:
        syslog.check(options)
    elif driver == GELF:
        gelf.check(options)
    elif driver == FLUENTD:
        fluentd.check(options)
    if "tag" in options:
        attrs.check_tag(options["tag"])
    if "cache-disabled" in options and options["cache-disabled"] not in _TRUE | _FALSE:
        raise InvalidArgument(f"invalid value for option cache-disabled: {options['cache-disabled']}")


def _check_mode(options: dict[str, str]) -> None:
    """dockerd's checks of the options every driver takes."""
    mode = options.get("mode", "")
    if mode not in _MODES:
        raise InvalidArgument(f"logger: logging mode not supported: {mode}")
    if "max-buffer-size" in options:
        if mode != "non-blocking":
            raise InvalidArgument("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
        if _RAM_SIZE.match(options["max-buffer-size"]) is None:
            raise InvalidArgument(f"error parsing option max-buffer-size: invalid size: "
                                  f"'{options['max-buffer-size']}'")


def resolve(config: dict[str, Any] | None, daemon_driver: str, daemon_options: dict[str, str]) -> LogSettings:
    """HostConfig.LogConfig, completed from the daemon's defaults and checked."""
    given = config or {}
    driver = given.get("Type") or daemon_driver
    options = dict(given.get("Config") or {})
    if not given.get("Type") or given.get("Type") == daemon_driver:
        options = {**daemon_options, **options}
    check(driver, options)
    return replace(_completed(driver, options), configured=options)


def _completed(driver: str, options: dict[str, str]) -> LogSettings:
    if driver == NONE:
        return LogSettings(NONE)
    if driver in REMOTE:
        # The cache rotates as the local driver's files do, sized by the cache-* options.
        cache = {**_LOCAL_DEFAULTS, **{k.removeprefix("cache-"): v for k, v in options.items() if k in _CACHE}}
        if cache["max-file"] == "1" and "cache-compress" not in options:
            cache["compress"] = "false"  # one file: nothing rotated to compress
        if cache.get("disabled") in _TRUE:
            return LogSettings(driver, options, cache_disabled=True)
        return LogSettings(driver, options, *_sizing(cache, LOCAL))
    if driver == LOCAL:
        options = {**_LOCAL_DEFAULTS, **options}
    elif "max-size" not in options and "max-file" not in options:
        _sizing(options, driver)  # as given first: `compress=true` alone is dockerd's refusal, defaults or not
        options = {**DEFAULT_ROTATION, **options}
    return LogSettings(driver, options, *_sizing(options, driver))


def _sizing(options: dict[str, str], driver: str) -> tuple[int | None, int, bool]:
    """max-size, max-file and compress, checked as dockerd checks them for `driver`'s files."""
    max_size = None
    if "max-size" in options:
        max_size = human_size(options["max-size"])
        if max_size == 0 and driver == LOCAL:
            max_size = None  # the local driver's "no limit"
        elif max_size <= 0:
            raise InvalidArgument("max-size must be a positive number")
    max_file = 1
    if "max-file" in options:
        try:
            max_file = int(options["max-file"])
        except ValueError:
            raise InvalidArgument(f'strconv.Atoi: parsing "{options["max-file"]}": invalid syntax') from None
        if max_file < 1:
            raise InvalidArgument("max-file cannot be less than 1")
    compress = _bool("compress", options["compress"]) if "compress" in options else False
    if compress and driver == LOCAL and max_file == 1:
        raise InvalidArgument("compression cannot be enabled when max file count is 1")
    if compress and driver != LOCAL and (max_file == 1 or max_size is None):
        raise InvalidArgument("compress cannot be true when max-file is less than 2 or max-size is not set")
    return max_size, max_file, compress
