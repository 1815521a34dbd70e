"""The acting principal passed to every service call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelreg.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class Principal:
    """A user or a service account; ``name`` is what history and audit records show."""

    name: str
    kind: Literal["user", "service"] = "user"

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 128 or not self.name.isprintable():
            raise InvalidArgument(f"invalid principal name {self.name!r}")
