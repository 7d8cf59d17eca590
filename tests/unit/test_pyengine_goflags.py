"""pyengine reads bool flags' values as the docker CLI (Go's pflag) does, before click parses the line."""
from __future__ import annotations

import pytest

from cli.pyengine.api import CLIError
from cli.pyengine.commands import _command_for
from cli.pyengine.goflags import bool_values

CASES = [
    # true is the bare flag; false drops it and makes False its default for the run
    (["run", "--rm=true", "--init=false", "busybox"], ["run", "--rm", "busybox"], {"run": {"init": False}}),
    (["run", "-d=1", "-t=F", "busybox"], ["run", "-d", "busybox"], {"run": {"tty": False}}),
    # a run of shorthands: the last one takes the value
    (["run", "-it=false", "busybox"], ["run", "-i", "busybox"], {"run": {"tty": False}}),
    # a shorthand's value after "=", attached, or next
    (["run", "-e=A=1", "-eB=2", "-e", "C=3", "-dp", "80:80", "busybox"],
     ["run", "-e", "A=1", "-eB=2", "-e", "C=3", "-d", "-p", "80:80", "busybox"], {"run": {}}),
    # the image's command is the command's own: left as it is
    (["run", "busybox", "ls", "--color=false", "-a=1"], ["run", "busybox", "ls", "--color=false", "-a=1"],
     {"run": {}}),
    (["run", "--", "--rm=true"], ["run", "--", "--rm=true"], {"run": {}}),
    # an option's value is not read as a flag, nor an unknown option rewritten
    (["logs", "--tail", "-1", "--follow=true", "c"], ["logs", "--tail", "-1", "--follow", "c"], {"logs": {}}),
    (["ps", "--nope=1"], ["ps", "--nope=1"], {"ps": {}}),
    # options between operands, groups, and the root's own flags
    (["rm", "-f=true", "a", "-v=false", "b"], ["rm", "-f", "a", "b"], {"rm": {"volumes": False}}),
    (["container", "run", "-i=0", "img"], ["container", "run", "img"], {"container": {"run": {"interactive": False}}}),
    (["--tlsverify=false", "ps", "-a=true"], ["ps", "-a"], {"tlsverify": False, "ps": {}}),
]


@pytest.mark.parametrize(("argv", "args", "defaults"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bool_values_as_pflag_reads_them(argv, args, defaults):
    assert bool_values(_command_for(argv), argv) == (args, defaults)


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
