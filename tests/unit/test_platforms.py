"""Platform specifiers as containerd reads them, and matching an image's platform."""
from __future__ import annotations

import pytest

from engine.errors import InvalidArgument
from engine.images.platforms import Platform, host, of_image, parse


def test_parse_and_normalise() -> None:
    assert parse("linux/amd64") == Platform("linux", "amd64")
    assert parse("Linux/ARM/v7") == Platform("linux", "arm", "v7")
    assert parse("linux/aarch64") == Platform("linux", "arm64")
    assert parse("armhf") == Platform("linux", "arm", "v7")
    assert parse("linux") == Platform("linux", host().architecture, host().variant)
    assert str(parse("windows/amd64")) == "windows/amd64"
    for bad in ("bogus", "nonsense//", "linux/amd64/v1/x", "", "plan10/amd64", "linux/z80"):
        with pytest.raises(InvalidArgument, match="unknown operating system or architecture"):
            parse(bad)


def test_matching() -> None:
    image = of_image({"os": "linux", "architecture": "arm64"})
    assert parse("linux/arm64").matches(image) and parse("linux/arm64/v8").matches(image)
    assert not parse("linux/amd64").matches(image)
    assert parse("linux/arm").matches(of_image({"os": "linux", "architecture": "arm", "variant": "v6"}))
    assert not parse("linux/arm/v7").matches(of_image({"os": "linux", "architecture": "arm", "variant": "v6"}))
