"""pyengine reads bool flags' values as the docker CLI (Go's pflag) does, before click parses the line."""
from __future__ import annotations

from typing import Any

import pytest

from cli.pyengine.api import CLIError
from cli.pyengine.commands import _command_for
from cli.pyengine.goflags import bool_values

CASES = [
    # true is the bare flag; false drops it and makes False its default (--init's is None: the daemon's choice)
    (["run", "--rm=true", "--init=false", "busybox"], ["run", "--rm", "busybox"], {"init"}),
    (["run", "-d=1", "-t=F", "busybox"], ["run", "-d", "busybox"], {"tty"}),
    # a run of shorthands: the last one takes the value
    (["run", "-it=false", "busybox"], ["run", "-i", "busybox"], {"tty"}),
    # a shorthand's value after "=", attached, or next
    (["run", "-e=A=1", "-eB=2", "-e", "C=3", "-dp", "80:80", "busybox"],
     ["run", "-e", "A=1", "-eB=2", "-e", "C=3", "-d", "-p", "80:80", "busybox"], set()),
    # the image's command is the command's own: left as it is
    (["run", "busybox", "ls", "--color=false", "-a=1"], ["run", "busybox", "ls", "--color=false", "-a=1"], set()),
    (["run", "--", "--rm=true"], ["run", "--", "--rm=true"], set()),
    # an option's value is not read as a flag, nor an unknown option rewritten
    (["logs", "--tail", "-1", "--follow=true", "c"], ["logs", "--tail", "-1", "--follow", "c"], set()),
    (["ps", "--nope=1"], ["ps", "--nope=1"], set()),
    # options between operands, groups, and the root's own flags
    (["rm", "-f=true", "a", "-v=false", "b"], ["rm", "-f", "a", "b"], {"volumes"}),
    (["container", "run", "-i=0", "img"], ["container", "run", "img"], {"interactive"}),
    (["context", "ls", "--quiet=false"], ["context", "ls"], {"quiet"}),
    (["--tlsverify=false", "ps", "-a=true"], ["ps", "-a"], {"tlsverify"}),
    # flags that are on unless turned off, and flags whose unset value is the daemon's choice
    (["build", "--rm", "."], ["build", "--rm", "."], set()),
    (["build", "--rm=false", "."], ["build", "."], {"rm"}),
    (["run", "--sig-proxy=false", "busybox"], ["run", "busybox"], {"sig_proxy"}),
    (["attach", "--sig-proxy=0", "c"], ["attach", "c"], {"sig_proxy"}),
    (["history", "-H=false", "img"], ["history", "img"], {"human"}),
    (["-H", "unix:///x.sock", "history", "--human=false", "img"], ["-H", "unix:///x.sock", "history", "img"],
     {"human"}),
    (["network", "create", "--ipv4=false", "n"], ["network", "create", "n"], {"ipv4"}),
]


def _defaults(command: Any, argv: list[str], names: set[str]) -> dict[str, Any]:
    """The defaults of the options called `names` on the commands `argv` goes through."""
    found = {p.name: p.default for p in command.params if p.name in names}
    for arg in argv:
        if hasattr(command, "commands") and arg in command.commands:
            command = command.commands[arg]
            found.update({p.name: p.default for p in command.params if p.name in names})
    return found


@pytest.mark.parametrize(("argv", "args", "unset"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bool_values_as_pflag_reads_them(argv, args, unset):
    command = _command_for(argv)
    assert bool_values(command, argv) == args
    assert _defaults(command, argv, unset) == dict.fromkeys(unset, False)


def test_the_root_keeps_its_options_when_a_command_shares_a_name_with_one():
    # `context` is the root's -c/--context and a command group.
    command = _command_for(["context", "ls", "--quiet=false"])
    bool_values(command, ["context", "ls", "--quiet=false"])
    assert [p.default for p in command.params if p.name == "context"] == [None]


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--rm=maybe", "busybox"], 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing '
                                       '"maybe": invalid syntax'),
    (["run", "-it=2", "busybox"], 'invalid argument "2" for "-t, --tty" flag: strconv.ParseBool: parsing "2": '
                                  'invalid syntax'),
])
def test_a_value_parsebool_refuses_is_refused_in_dockers_words(argv, message):
    with pytest.raises(CLIError) as e:
        bool_values(_command_for(argv), argv)
    assert (e.value.message, e.value.exit_code) == (message, 125)
