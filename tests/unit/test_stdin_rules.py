"""Docker's stdin rules: detach-key syntax as dockerd parses it, the detach scanner, which stdin outlives a client."""
from __future__ import annotations

import pytest

from engine.api.bridge import _DetachScanner
from engine.containers.execs import ExecConfig, parse_model
from engine.containers.stdin import closes_stdin_after_attach, keeps_stdin_open, parse_detach_keys


@pytest.mark.parametrize("spec, keys", [
    (None, b"\x10\x11"), ("", b"\x10\x11"), ("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-x,x", b"\x18x"),
    ("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", bytes([0, 27, 28, 29, 30, 31])), ("DEL", b"\x7f"),
    ("a,b,,", None), ("Ctrl-P", None), ("ctrl-p, ctrl-q", None), ("ctrl-", None), ("ab", None), ("é", None),
    ("del", None), ("ctrl-1", None),
])
def test_detach_key_syntax(spec: str | None, keys: bytes | None) -> None:
    if keys is None:
        with pytest.raises(ValueError, match="Unknown character"):
            parse_detach_keys(spec)
    else:
        assert parse_detach_keys(spec) == keys


def test_scanner_holds_a_possible_start_and_drops_the_sequence() -> None:
    s = _DetachScanner(b"\x18x")
    assert s.feed(b"ab\x18") == (b"ab", False)
    assert s.feed(b"y") == (b"\x18y", False)
    assert s.feed(b"cd\x18") == (b"cd", False)
    assert s.feed(b"x and more") == (b"", True)


@pytest.mark.parametrize("config, keeps, closes", [
    ({}, False, False),
    ({"OpenStdin": True}, True, False),
    ({"OpenStdin": True, "Tty": True}, True, False),
    ({"OpenStdin": True, "StdinOnce": True, "Tty": True}, True, False),  # `docker run -it`
    ({"OpenStdin": True, "StdinOnce": True}, False, True),  # `docker run -i`
])
def test_which_stdin_outlives_a_client(config: dict[str, bool], keeps: bool, closes: bool) -> None:
    assert (keeps_stdin_open(config), closes_stdin_after_attach(config)) == (keeps, closes)


def test_exec_fields_match_case_insensitively_as_go_decodes() -> None:
    config = parse_model(ExecConfig, {"detachKeys": "ctrl-x,x", "cmd": ["sh"], "Tty": True})
    assert (config.DetachKeys, config.Cmd, config.Tty) == ("ctrl-x,x", ["sh"], True)
    both = parse_model(ExecConfig, {"DetachKeys": "ctrl-a", "detachkeys": "ctrl-b", "Cmd": ["true"]})
    assert both.DetachKeys == "ctrl-b"
