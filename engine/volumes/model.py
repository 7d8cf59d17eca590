"""The engine's volume records (local driver)."""
from __future__ import annotations

from pydantic import BaseModel

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


class Volume(BaseModel):
    name: str
    driver: str = "local"
    created: float
    # None when the create named none: dockerd shows `null` then, and the `{}` the docker CLI sends as `{}`.
    labels: dict[str, str] | None = None
    # The local driver's type, device, o (mount(8) arguments); None when the create named none, as Labels.
    options: dict[str, str] | None = None

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in (self.labels or {})
