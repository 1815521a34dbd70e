"""The stage machine: which stages exist, which moves are allowed, which stages are exclusive.

A registry has one lifecycle, stored in its database so every process sees the same one.
The default is development -> staging -> production -> archived with production exclusive:
promoting a version into production moves the previous holder to archived.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from modelreg.errors import InvalidArgument, InvalidTransition, NotFound

_STAGE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Lifecycle:
    """Stages in display order, allowed moves, and exclusive stages with their overflow."""

    stages: tuple[str, ...]
    initial: str
    transitions: dict[str, tuple[str, ...]]
    # exclusive stage -> stage the previous holder moves to when a new version arrives
    exclusive: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.stages:
            raise InvalidArgument("a lifecycle needs at least one stage")
        if len(set(self.stages)) != len(self.stages):
            raise InvalidArgument("lifecycle stages must be unique")
        for stage in self.stages:
            if not _STAGE.match(stage):
                raise InvalidArgument(
                    f"invalid stage name {stage!r}: lowercase letters, digits, '_' and '-', "
                    "starting with a letter, at most 32 characters"
                )
            if stage == "latest":
                raise InvalidArgument("'latest' is reserved and cannot be a stage")
        known = set(self.stages)
        if self.initial not in known:
            raise InvalidArgument(f"initial stage {self.initial!r} is not one of the stages")
        for source, targets in self.transitions.items():
            for stage in (source, *targets):
                if stage not in known:
                    raise InvalidArgument(f"transition names unknown stage {stage!r}")
            if source in targets:
                raise InvalidArgument(f"stage {source!r} cannot transition to itself")
        for stage, overflow in self.exclusive.items():
            if stage not in known or overflow not in known:
                raise InvalidArgument(
                    f"exclusive rule {stage!r} -> {overflow!r} names unknown stage"
                )
            if stage == overflow:
                raise InvalidArgument(f"exclusive stage {stage!r} cannot overflow into itself")
            if overflow in self.exclusive:
                raise InvalidArgument(
                    f"exclusive stage {stage!r} overflows into {overflow!r}, which is exclusive too"
                )

    def check_stage(self, stage: str) -> str:
        """Return ``stage`` if it exists in this lifecycle, else raise NotFound."""
        if stage not in self.stages:
            raise NotFound(
                f"unknown stage {stage!r}; stages are: {', '.join(self.stages)}", stage=stage
            )
        return stage

    def check_transition(self, source: str, target: str) -> None:
        """Raise InvalidTransition unless ``source -> target`` is an allowed move."""
        self.check_stage(target)
        if source == target:
            raise InvalidTransition(f"version is already in stage {target!r}", stage=target)
        allowed = self.transitions.get(source, ())
        if target not in allowed:
            options = ", ".join(allowed) or "none"
            raise InvalidTransition(
                f"cannot move from {source!r} to {target!r}; allowed from {source!r}: {options}",
                source=source,
                target=target,
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; ``from_dict`` reads it back."""
        return {
            "stages": list(self.stages),
            "initial": self.initial,
            "transitions": {k: list(v) for k, v in self.transitions.items()},
            "exclusive": dict(self.exclusive),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> Lifecycle:
        """Build a lifecycle from parsed JSON/YAML, with clear errors for a wrong shape."""
        if not isinstance(data, dict):
            raise InvalidArgument("a lifecycle must be an object")
        unknown = set(data) - {"stages", "initial", "transitions", "exclusive"}
        if unknown:
            raise InvalidArgument(f"unknown lifecycle keys: {', '.join(sorted(unknown))}")
        stages = data.get("stages")
        if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
            raise InvalidArgument("lifecycle 'stages' must be a list of strings")
        initial = data.get("initial", stages[0] if stages else "")
        transitions = data.get("transitions", {})
        exclusive = data.get("exclusive", {})
        if not isinstance(initial, str):
            raise InvalidArgument("lifecycle 'initial' must be a string")
        if not isinstance(transitions, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in transitions.values()
        ):
            raise InvalidArgument("lifecycle 'transitions' must map a stage to a list of stages")
        if not isinstance(exclusive, dict) or not all(
            isinstance(v, str) for v in exclusive.values()
        ):
            raise InvalidArgument("lifecycle 'exclusive' must map a stage to a stage")
        return cls(
            stages=tuple(stages),
            initial=initial,
            transitions={str(k): tuple(v) for k, v in transitions.items()},
            exclusive={str(k): v for k, v in exclusive.items()},
        )


DEFAULT_LIFECYCLE = Lifecycle(
    stages=("development", "staging", "production", "archived"),
    initial="development",
    transitions={
        "development": ("staging", "archived"),
        "staging": ("production", "development", "archived"),
        "production": ("archived", "staging"),
        # archived -> production is the rollback path: restore the previous champion quickly
        "archived": ("development", "staging", "production"),
    },
    exclusive={"production": "archived"},
)
