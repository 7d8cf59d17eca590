"""The one signal parser (runtime/signals.py): Docker's forms, its message, the runtime's error type."""
from __future__ import annotations

import pytest

from runtime.client import InvalidArgument
from runtime.client.signals import parse_signal


@pytest.mark.parametrize("value", ["KILL", "SIGKILL", "kill", "sigkill", "9", " 9 ", 9])
def test_the_forms_docker_accepts(value: str | int) -> None:
    assert parse_signal(value) == 9


@pytest.mark.parametrize(("value", "number"), [("TERM", 15), ("usr1", 10), ("SIGRTMIN", 34), ("1", 1), (64, 64),
                                              ("SIGRTMIN+3", 37), ("rtmin+1", 35), ("RTMAX-1", 63),
                                              ("SIGRTMAX", 64), ("RTMIN+15", 49), ("RTMAX-14", 50)])
def test_names_and_numbers(value: str | int, number: int) -> None:
    assert parse_signal(value) == number


@pytest.mark.parametrize("value", ["", "SIGNOPE", "SIG", "0", 0, "65", 65, -1, "-9", "²", "9.0", "SIG_DFL",
                                   "RTMIN+16", "RTMAX-15", "RTMIN+0", "SIGRTMIN+"])
def test_anything_else_is_dockers_invalid_signal(value: str | int) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_signal(value)
    assert e.value.message == f"Invalid signal: {value}"
