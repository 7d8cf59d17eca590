"""ADD of a URL: a server that cannot be reached is the Dockerfile's fault, a 400-kind error naming the URL."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.builder.copy_files import CopyFiles, PreparedCopy
from engine.builder.image_files import Scratch
from engine.errors import InvalidArgument


async def test_an_unreachable_url_is_invalid_argument(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)
    prepared: Any = PreparedCopy(runtime=None, dest="/", single_file=True, owner=None, link=False,
                                 scratch=scratch, keyword="ADD")
    with pytest.raises(InvalidArgument, match=r"^ADD failed: http://127.0.0.1:1/x: Cannot connect"):
        await CopyFiles(None, tmp_path)._download(prepared, SimpleNamespace(checksum=""),
                                                  "http://127.0.0.1:1/x", scratch)
    await scratch.close()
