"""Which variables a Dockerfile word sees, as BuildKit decides.

- FROM lines (the base image and `--platform`) and `COPY --from`/`--mount from=` see the *global* scope:
  the automatic platform ARGs (TARGETPLATFORM, BUILDARCH...: values the executor passes), then the
  ARGs declared before the first FROM, in order, each default expanded with those before it and
  overridden by a build-arg of that name.
- Inside a stage nothing global is visible until declared: `ARG NAME` takes the build-arg, else its
  own default, else the global value of that name (a global ARG or an automatic platform ARG).
  An ARG declared without any value stays unset (`${NAME-x}` gives x).
- ENV values override ARG values of the same name; both are what ADD COPY ENV EXPOSE FROM LABEL
  STOPSIGNAL USER VOLUME WORKDIR (and ONBUILD's trigger, when it fires) substitute; RUN, CMD and
  ENTRYPOINT are left to the shell, which gets the ARG values (and the proxy build-args) in its
  environment, without them being written into the image.
- The proxy build-args (HTTP_PROXY... in both cases) need no ARG and never count as unconsumed.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.builder.dockerfile.errors import DockerfileError, SubstitutionError
from engine.builder.dockerfile.instructions import Arg, ArgDecl
from engine.builder.dockerfile.lexer import expand

PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})
PLATFORM_ARGS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
                 "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")

BuildArgs = Mapping[str, str | None]


def _resolve(decl: ArgDecl, build_args: BuildArgs, env: Mapping[str, str],
             fallback: Mapping[str, str], escape: str) -> str | None:
    given = build_args.get(decl.name)
    if given is not None:
        return given
    if decl.default is not None:
        return expand(decl.default, env, escape)
    return fallback.get(decl.name)


def global_scope(global_args: Iterable[Arg], build_args: BuildArgs,
                 automatic: Mapping[str, str], escape: str = "\\") -> dict[str, str]:
    """The values FROM lines and `--from` expressions are expanded with."""
    env = dict(automatic)
    for arg in global_args:
        for decl in arg.args:
            try:
                value = _resolve(decl, build_args, env, automatic, escape)
            except SubstitutionError as err:
                raise DockerfileError(err.message, arg.start_line) from None
            if value is None:
                env.pop(decl.name, None)
            else:
                env[decl.name] = value
    return env


class StageScope:
    """The variables of one stage as its instructions run: `declare` each ARG, `set_env` each ENV."""

    def __init__(self, global_values: Mapping[str, str], build_args: BuildArgs,
                 image_env: Mapping[str, str] | None = None, escape: str = "\\") -> None:
        self.global_values = global_values
        self.build_args = build_args
        self.escape = escape
        self.args: dict[str, str] = {}
        self.declared: set[str] = set()
        self.env_vars: dict[str, str] = dict(image_env or {})

    def env(self) -> dict[str, str]:
        """What a word of this step is expanded with (`lexer.expand(word, scope.env())`)."""
        return {**self.args, **self.env_vars}

    def declare(self, arg: Arg) -> None:
        """Raises DockerfileError (with the ARG's line) when a default cannot be expanded."""
        for decl in arg.args:
            self.declared.add(decl.name)
            try:
                value = _resolve(decl, self.build_args, self.env(), self.global_values, self.escape)
            except SubstitutionError as err:
                raise DockerfileError(err.message, arg.start_line) from None
            if value is None:
                self.args.pop(decl.name, None)
            else:
                self.args[decl.name] = value

    def set_env(self, key: str, value: str) -> None:
        self.env_vars[key] = value

    def run_env(self) -> dict[str, str]:
        """Extra environment of a RUN (not committed): the ARG values ENV does not shadow. Part of the step's
        cache key and of its history line."""
        return {k: v for k, v in self.args.items() if k not in self.env_vars}

    def proxy_env(self) -> dict[str, str]:
        """The proxy build-args no ARG declares: a RUN gets them too, but as in dockerd they are neither in its
        cache key nor in its history (they may hold credentials)."""
        return {k: v for k, v in self.build_args.items() if k in PROXY_ARGS and v is not None and k not in self.args}


def unused_build_args(build_args: BuildArgs, declared: Iterable[str]) -> list[str]:
    """Build-args no ARG of the built stages (or the global ones) declared, proxies aside, sorted."""
    used = set(declared)
    return sorted(k for k in build_args if k not in used and k not in PROXY_ARGS)


def unused_build_args_warning(unused: list[str]) -> str | None:
    """dockerd's line for them (Go's %v of a string list), or None when all were consumed."""
    if not unused:
        return None
    return f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n"
