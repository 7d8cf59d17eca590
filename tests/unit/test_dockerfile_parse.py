"""The Dockerfile parser and instruction model: BuildKit's rules, dockerd's error words with lines."""
from __future__ import annotations

import pytest

from engine.builder.dockerfile import DockerfileError, parse_dockerfile, warnings_text
from engine.builder.dockerfile import instructions as ins
from engine.builder.dockerfile.mounts import MountType, Sharing
from engine.builder.dockerfile.parser import parse


def one(text: str) -> ins.Instruction:
    return parse_dockerfile("FROM a\n" + text).stages[0].instructions[0]


@pytest.mark.parametrize("text, keyword, start, end, args", [
    ("FROM a\nRUN echo a \\\n  b\n", "RUN", 2, 3, "echo a   b"),
    ("FROM a\nRUN echo a \\\n# comment\n  b\n", "RUN", 2, 4, "echo a   b"),
    ("FROM a\nRUN echo a \\\n\n  b\n", "RUN", 2, 4, "echo a   b"),
    ("# escape=`\nFROM a\nRUN echo a `\n  b\n", "RUN", 3, 4, "echo a   b"),
    ("# escape=`\nFROM a\nRUN dir c:\\\n", "RUN", 3, 3, "dir c:\\"),
    ("\ufeffFROM a\r\nRUN x \\\r\n y\r\n", "RUN", 2, 3, "x  y"),
    ("FROM a\n   run   x  \n", "RUN", 2, 2, "x"),
    ("FROM a\nRUN echo \\", "RUN", 2, 2, "echo"),
    ("FROM a\n\n\n#c\nRUN x\n", "RUN", 5, 5, "x"),
    ("FROM a\nRUN a \\  \n b\n", "RUN", 2, 3, "a  b"),
])
def test_lines_and_continuations(text: str, keyword: str, start: int, end: int, args: str) -> None:
    raw = parse(text).instructions[-1]
    assert (raw.keyword, raw.start_line, raw.end_line, raw.args) == (keyword, start, end, args)


def test_directives() -> None:
    parsed = parse("# syntax=docker/dockerfile:1\n#escape = `\nFROM a\n")
    assert parsed.escape == "`" and parsed.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert parse("\n# escape=`\nFROM a\n").escape == "\\"
    assert parse("# comment\n# escape=`\nFROM a\n").escape == "\\"
    assert parse("FROM a\n# escape=`\n").escape == "\\"


def test_empty_continuation_warns() -> None:
    parsed = parse("FROM a\nRUN echo \\\n\n b\n")
    assert parsed.warnings == ["[WARNING]: Empty continuation line found in:\n    RUN echo  b"]
    assert warnings_text(parsed.warnings) == (
        "[WARNING]: Empty continuation line found in:\n    RUN echo  b\n"
        "[WARNING]: Empty continuation lines will become errors in a future release.\n")
    assert warnings_text([]) == ""


@pytest.mark.parametrize("text, message", [
    ("FROM a\nFOO bar\n", "dockerfile parse error line 2: unknown instruction: FOO"),
    ("FROM a\n\nrunn x\n", "dockerfile parse error line 3: unknown instruction: RUNN"),
    ("FROM a\nCOPY --foo=1 a b\n", "dockerfile parse error line 2: Unknown flag: foo"),
    ("FROM a\nRUN --chown=1 x\n", "dockerfile parse error line 2: Unknown flag: chown"),
    ("FROM a\nCMD --x=1 y\n", "dockerfile parse error line 2: Unknown flag: x"),
    ("FROM a\nCOPY --from a b\n", "dockerfile parse error line 2: Missing a value on flag: from"),
    ("FROM a\nCOPY --link=maybe a b\n",
     "dockerfile parse error line 2: Expecting boolean value for flag link, not: maybe"),
    ("FROM a\nCOPY --from=x --from=y a b\n", "dockerfile parse error line 2: Duplicate flag specified: from"),
    ("FROM a\nCOPY --parents a b\n", "dockerfile parse error line 2: COPY --parents is not supported by this builder"),
    ("FROM a\nCOPY --exclude=*.md a b\n",
     "dockerfile parse error line 2: COPY --exclude is not supported by this builder"),
    ("FROM a\nADD --keep-git-dir a b\n",
     "dockerfile parse error line 2: ADD --keep-git-dir is not supported by this builder (no git sources)"),
    ("FROM a\n\n\n\nCMD [\"a\", 1]\n",
     "dockerfile parse error line 5: when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM a\nRUN <<EOF\necho\n", "dockerfile parse error line 2: unterminated heredoc"),
    ("# escape=x\nFROM a\n", "dockerfile parse error line 1: invalid escape token 'x' does not match ` or \\"),
    ("# escape=`\n# escape=\\\nFROM a\n",
     "dockerfile parse error line 2: only one escape parser directive can be used"),
    ("FROM a\nENV a=b c\n",
     "dockerfile parse error line 2: Syntax error - can't find = in \"c\". Must be of the form: name=value"),
    ("FROM a\nENV a\n", "dockerfile parse error line 2: ENV must have two arguments"),
    ("FROM a\nENV\n", "dockerfile parse error line 2: ENV requires at least one argument"),
    ("FROM a\nLABEL =x\n", "dockerfile parse error line 2: LABEL names can not be blank"),
    ("FROM a\nARG\n", "dockerfile parse error line 2: ARG requires at least one argument"),
    ("FROM a\nARG =x\n", "dockerfile parse error line 2: ARG names can not be blank"),
    ("FROM a\nEXPOSE\n", "dockerfile parse error line 2: EXPOSE requires at least one argument"),
    ("FROM a\nVOLUME [\"\"]\n", "dockerfile parse error line 2: VOLUME specified can not be an empty string"),
    ("FROM a\nUSER\n", "dockerfile parse error line 2: USER requires exactly one argument"),
    ("FROM a\nWORKDIR\n", "dockerfile parse error line 2: WORKDIR requires exactly one argument"),
    ("FROM a\nRUN\n", "dockerfile parse error line 2: RUN requires at least one argument"),
    ("FROM a\nSHELL /bin/bash -c\n", "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nCOPY a\n", "dockerfile parse error line 2: COPY requires at least two arguments, but only one "
     "was provided. Destination could not be determined."),
    ("FROM a\nONBUILD ONBUILD RUN x\n",
     "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD MAINTAINER b\n", "dockerfile parse error line 2: MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD BOGUS b\n", "dockerfile parse error line 2: unknown instruction: BOGUS"),
    ("FROM a\nHEALTHCHECK NONE x\n", "dockerfile parse error line 2: HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK FOO x\n", "dockerfile parse error line 2: Unknown type \"FOO\" in HEALTHCHECK (try CMD)"),
    ("FROM a\nHEALTHCHECK CMD\n", "dockerfile parse error line 2: Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK --interval=5 CMD x\n", "dockerfile parse error line 2: time: invalid duration \"5\""),
    ("FROM a\nHEALTHCHECK --interval=1us CMD x\n",
     "dockerfile parse error line 2: Interval \"interval\" cannot be less than 1ms"),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "dockerfile parse error line 2: --retries cannot be negative (-1)"),
    ("FROM a b\n", "dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM a IS b\n",
     "dockerfile parse error line 1: When using FROM with 3 arguments, second argument must be \"AS\""),
    ("FROM a AS 1x\n", "dockerfile parse error line 1: invalid name for build stage: \"1x\", name can't start with "
     "a number or contain symbols"),
    ("FROM a AS x\nFROM b AS X\n", "dockerfile parse error line 2: duplicate stage name \"x\""),
    ("RUN x\nFROM a\n", "dockerfile parse error line 1: no build stage in current context"),
    ("ARG x\n", "dockerfile contains no stages to build"),
    ("\n  \n", "the Dockerfile (Dockerfile) cannot be empty"),
    ("FROM a\nRUN --network=bridge x\n", "dockerfile parse error line 2: unsupported network mode 'bridge'"),
    ("FROM a\nRUN --security=insecure x\n",
     "dockerfile parse error line 2: RUN --security=insecure is not allowed: this builder grants no security.insecure"),
    ("FROM a\nRUN --mount=type=nfs,target=/x y\n", "dockerfile parse error line 2: unsupported mount type \"nfs\""),
    ("FROM a\nRUN --mount=type=cache,foo=1,target=/x y\n",
     "dockerfile parse error line 2: unexpected key 'foo' in 'foo=1'"),
    ("FROM a\nRUN --mount=type=cache y\n", "dockerfile parse error line 2: mount type cache requires a target"),
    ("FROM a\nRUN --mount=type=cache,target=/x,sharing=all y\n",
     "dockerfile parse error line 2: unsupported sharing value \"all\""),
    ("FROM a\nRUN --mount=type=bind,target=/x,sharing=locked y\n",
     "dockerfile parse error line 2: invalid cache sharing set for bind mount"),
    ("FROM a\nRUN --mount=type=cache,target=/x,mode=9 y\n", "dockerfile parse error line 2: invalid value for mode: 9"),
    ("FROM a\nRUN --mount=type=bind,target=/x,uid=1 y\n",
     "dockerfile parse error line 2: uid not allowed for \"bind\" type mounts"),
    ("FROM a\nRUN --mount=type=tmpfs,target=/x,required y\n",
     "dockerfile parse error line 2: unexpected key 'required' for mount type 'tmpfs'"),
    ("FROM a\nRUN --mount=type=secret,from=x,id=y z\n",
     "dockerfile parse error line 2: secret mount should not have a from"),
    ("FROM a\nRUN --mount=type=secret z\n",
     "dockerfile parse error line 2: invalid secret mount. one of source, target required"),
    ("FROM a\nRUN --mount=type=secret,id=a,source=b z\n",
     "dockerfile parse error line 2: both source and id can't be set"),
    ("FROM a\nRUN --mount=target=/x,ro=maybe z\n", "dockerfile parse error line 2: invalid value for ro: maybe"),
    ("FROM a\nRUN --mount=type=bind,target z\n",
     "dockerfile parse error line 2: invalid field 'target' must be a key=value pair"),
])
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as err:
        parse_dockerfile(text)
    assert err.value.message == message
    assert err.value.status == 400


def test_from_forms() -> None:
    df = parse_dockerfile("ARG V=1\nFROM --platform=$BUILDPLATFORM img:$V AS Build\nFROM scratch\n")
    first = df.stages[0]
    assert (first.base, first.name, first.platform) == ("img:$V", "build", "$BUILDPLATFORM")
    assert df.global_args[0].args == (ins.ArgDecl("V", "1"),)
    assert df.stages[1].base == "scratch" and df.stages[1].name == ""


@pytest.mark.parametrize("text, command", [
    ('CMD ["a", "b"]', ["a", "b"]),
    ("CMD [\"a\", 'b']", "[\"a\", 'b']"),
    ("CMD [a]", "[a]"),
    ("CMD echo $HOME", "echo $HOME"),
    ('CMD ["a"] trailing', ["a"]),
    ("CMD []", []),
    ('ENTRYPOINT ["/bin/sh", "-c"]', ["/bin/sh", "-c"]),
    ('RUN ["echo", "a b"]', ["echo", "a b"]),
    ('RUN [ "x" ]', ["x"]),
    ("RUN {\"a\": 1}", "{\"a\": 1}"),
])
def test_json_form_detection(text: str, command: object) -> None:
    assert getattr(one(text), "command") == command


def test_env_label_arg() -> None:
    env = one('ENV a=b "c d"="e f" g=h\\ i')
    assert isinstance(env, ins.Env)
    assert env.pairs == (("a", "b"), ('"c d"', '"e f"'), ("g", "h\\ i"))
    legacy = one("ENV x y  z")
    assert isinstance(legacy, ins.Env) and legacy.pairs == (("x", "y  z"),)
    label = one("LABEL version=1.0 'a b'=c")
    assert isinstance(label, ins.Label) and label.pairs == (("version", "1.0"), ("'a b'", "c"))
    arg = one("ARG a=1 b c=")
    assert isinstance(arg, ins.Arg)
    assert arg.args == (ins.ArgDecl("a", "1"), ins.ArgDecl("b"), ins.ArgDecl("c", ""))


def test_simple_instructions() -> None:
    assert one("EXPOSE 80/tcp  443 $P") == ins.Expose("EXPOSE", "EXPOSE 80/tcp  443 $P", 2, 2, ("80/tcp", "443", "$P"))
    volume = one('VOLUME ["/a", "/b c"]')
    assert isinstance(volume, ins.Volume) and volume.paths == ("/a", "/b c")
    volume = one("VOLUME /a /b")
    assert isinstance(volume, ins.Volume) and volume.paths == ("/a", "/b")
    assert getattr(one("USER app:app"), "user") == "app:app"
    assert getattr(one("WORKDIR /src/$X"), "path") == "/src/$X"
    assert getattr(one("STOPSIGNAL SIGKILL"), "signal") == "SIGKILL"
    assert getattr(one("MAINTAINER Jo <jo@x>"), "name") == "Jo <jo@x>"
    assert getattr(one('SHELL ["pwsh", "-c"]'), "shell") == ("pwsh", "-c")


def test_copy_and_add_flags() -> None:
    copy = one("COPY --from=build --chown=1:2 --chmod=0755 --link a b /dst/")
    assert isinstance(copy, ins.Copy)
    assert (copy.sources, copy.dest, copy.from_, copy.chown, copy.chmod, copy.link) == (
        ("a", "b"), "/dst/", "build", "1:2", "0755", True)
    add = one("ADD --checksum=sha256:abc https://x/y /y")
    assert isinstance(add, ins.Copy) and add.keyword == "ADD" and add.checksum == "sha256:abc"
    quoted = one('COPY ["a b", "/c d/"]')
    assert isinstance(quoted, ins.Copy) and quoted.sources == ("a b",) and quoted.dest == "/c d/"
    assert isinstance(one("COPY --link=false a b"), ins.Copy)


def test_run_mounts_network() -> None:
    run = one("RUN --mount=type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1 "
              "--mount=type=bind,from=build,source=/out,target=/in,rw "
              "--mount=type=tmpfs,dst=/t,size=64m --mount=type=secret,id=tok "
              "--mount=type=ssh --mount=\"type=bind,target=/a b\" --mount=type=secret,source=npmrc,required "
              "--network=none make")
    assert isinstance(run, ins.Run)
    cache, bind, tmpfs, secret, ssh, spaced, npmrc = run.mounts
    assert (npmrc.id, npmrc.source, npmrc.target, npmrc.required) == ("npmrc", "", "/run/secrets/npmrc", True)
    assert (cache.type, cache.target, cache.id, cache.sharing, cache.mode, cache.uid, cache.readonly) == (
        MountType.CACHE, "/root/.cache", "/root/.cache", Sharing.LOCKED, 0o700, 1, False)
    assert (bind.from_, bind.source, bind.target, bind.readonly) == ("build", "/out", "/in", False)
    assert (tmpfs.type, tmpfs.target, tmpfs.size) == (MountType.TMPFS, "/t", 64 << 20)
    assert (secret.target, secret.readonly) == ("/run/secrets/tok", True)
    assert (ssh.id, ssh.target) == ("default", "/run/buildkit/ssh_agent.0")
    assert spaced.target == "/a b" and spaced.readonly
    assert run.network == "none" and run.command == "make"


def test_healthcheck() -> None:
    check = one("HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1.5s --start-interval=2s "
                "--retries=3 CMD curl -f http://x/ || exit 1")
    assert isinstance(check, ins.Healthcheck)
    assert check.test == ("CMD-SHELL", "curl -f http://x/ || exit 1")
    assert (check.interval, check.timeout, check.start_period, check.start_interval, check.retries) == (
        90_000_000_000, 500_000_000, 1_500_000_000, 2_000_000_000, 3)
    assert getattr(one('HEALTHCHECK CMD ["true"]'), "test") == ("CMD", "true")
    assert getattr(one("HEALTHCHECK NONE"), "test") == ("NONE",)


def test_onbuild_keeps_its_expression() -> None:
    onbuild = one("ONBUILD COPY --chown=1 . /app")
    assert isinstance(onbuild, ins.OnBuild)
    assert onbuild.expression == "COPY --chown=1 . /app"
    assert isinstance(onbuild.trigger, ins.Copy) and onbuild.trigger.chown == "1"


HEREDOCS = "FROM a\nRUN <<EOF\necho hi\n  indented\nEOF\n" \
    "RUN <<-'END' cat && cat /dev/fd/3 3<<\"X\"\n\t$keep\n\tEND\nx\nX\n" \
    "COPY <<A <<B /dst/\na $V\nA\nb\nB\nRUN echo \"<<EOF\" \\<<NO\nCMD x\n"


def test_heredocs() -> None:
    stage = parse_dockerfile(HEREDOCS).stages[0]
    first, second, copy, plain, cmd = stage.instructions
    assert isinstance(first, ins.Run) and first.command == "<<EOF" and (first.start_line, first.end_line) == (2, 5)
    (doc,) = first.heredocs
    assert (doc.name, doc.content, doc.chomp, doc.expand, doc.fd) == ("EOF", "echo hi\n  indented\n", False, True, 0)
    assert first.original == "RUN <<EOF\necho hi\n  indented\nEOF\n"
    assert isinstance(second, ins.Run)
    end, x = second.heredocs
    assert (end.name, end.content, end.body, end.chomp, end.expand) == ("END", "\t$keep\n", "$keep\n", True, False)
    assert (x.name, x.fd, x.expand, x.content) == ("X", 3, False, "x\n")
    assert isinstance(copy, ins.Copy) and copy.sources == () and copy.dest == "/dst/"
    assert [(c.name, c.content) for c in copy.contents] == [("A", "a $V\n"), ("B", "b\n")]
    assert isinstance(plain, ins.Run) and plain.heredocs == ()
    assert isinstance(cmd, ins.Cmd) and cmd.start_line == 17


def test_heredoc_only_in_run_copy_add() -> None:
    with pytest.raises(DockerfileError, match="line 3: unknown instruction: X"):
        parse_dockerfile("FROM a\nCMD <<EOF\nx\nEOF\n")
    run = one('RUN ["<<EOF"]')
    assert isinstance(run, ins.Run) and run.heredocs == () and run.command == ["<<EOF"]


def test_flags_quotes_and_end() -> None:
    raw = parse('FROM a\nRUN --mount=type=secret,id="a b" -- --not-a-flag\n').instructions[1]
    assert raw.flags == ("--mount=type=secret,id=a b",) and raw.args == "--not-a-flag"


def test_healthcheck_edges() -> None:
    check = one("HEALTHCHECK\tCMD\tx y")
    assert isinstance(check, ins.Healthcheck) and check.test == ("CMD-SHELL", "x y")
    with pytest.raises(DockerfileError, match="line 2: HEALTHCHECK requires at least one argument"):
        one("HEALTHCHECK")
    with pytest.raises(DockerfileError, match="cannot be less than 1ms"):
        one("HEALTHCHECK --timeout=-5s CMD x")
    assert getattr(one("HEALTHCHECK --interval=0 --timeout=.5s CMD x"), "timeout") == 500_000_000
