"""The engine's volume records (local driver)."""
from __future__ import annotations

from pydantic import BaseModel, Field

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


class Volume(BaseModel):
    name: str
    driver: str = "local"
    created: float
    labels: dict[str, str] = Field(default_factory=dict)
    options: dict[str, str] = Field(default_factory=dict)  # local driver: type, device, o (mount(8) arguments)

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels
