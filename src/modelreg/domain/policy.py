"""Lifecycle policy: which role may move a version into each stage, and which stages are
protected (entered only through an approved transition request)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelreg.auth.roles import Role
from modelreg.errors import InvalidArgument

MAX_APPROVALS = 10


@dataclass(frozen=True, slots=True)
class StageRule:
    """Who may move a version into one stage.

    ``role`` is the least role that may move a version in directly or, when the stage is
    protected (``approvals`` > 0), approve a request to do so. A protected stage is entered
    directly only by service accounts (automated pipelines) holding ``role``; everyone
    else opens a request, which ``approvals`` principals other than the requester approve.
    """

    role: Role
    approvals: int = 0

    @property
    def protected(self) -> bool:
        return self.approvals > 0

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role.value, "approvals": self.approvals}


DEFAULT_RULE = StageRule(Role.CONTRIBUTOR)


@dataclass(frozen=True, slots=True)
class Policy:
    """Stage rules; a stage without a rule gets ``DEFAULT_RULE`` (contributors, no approval)."""

    stages: Mapping[str, StageRule]

    def rule(self, stage: str) -> StageRule:
        return self.stages.get(stage, DEFAULT_RULE)

    def merged(self, override: Policy | None) -> Policy:
        """This policy with a model's own rules taking precedence stage by stage."""
        if override is None:
            return self
        return Policy({**self.stages, **override.stages})

    def to_dict(self) -> dict[str, Any]:
        return {"stages": {name: rule.to_dict() for name, rule in sorted(self.stages.items())}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> Policy:
        """Parse ``{"stages": {"production": {"role": "reviewer", "approvals": 1}, …}}``."""
        if not isinstance(data, Mapping) or set(data) != {"stages"}:
            raise InvalidArgument('a policy is an object with one key, "stages"')
        stages = data["stages"]
        if not isinstance(stages, Mapping):
            raise InvalidArgument('policy "stages" must map stage names to rules')
        rules: dict[str, StageRule] = {}
        for name, rule in stages.items():
            if not isinstance(name, str) or not name or len(name) > 32:
                raise InvalidArgument(f"invalid stage name {name!r} in policy")
            if not isinstance(rule, Mapping) or not set(rule) <= {"role", "approvals"}:
                raise InvalidArgument(
                    f'the rule for stage {name!r} must be {{"role": ROLE, "approvals": N}}'
                )
            approvals = rule.get("approvals", 0)
            if isinstance(approvals, bool) or not isinstance(approvals, int):
                raise InvalidArgument(f"approvals for stage {name!r} must be an integer")
            if not 0 <= approvals <= MAX_APPROVALS:
                raise InvalidArgument(
                    f"approvals for stage {name!r} must be between 0 and {MAX_APPROVALS}"
                )
            role = Role.parse(rule.get("role", DEFAULT_RULE.role.value))
            if approvals and role.rank < Role.REVIEWER.rank:
                # Approving is a reviewer's permission; a lower role could never approve.
                raise InvalidArgument(
                    f"protected stage {name!r} needs role reviewer or admin to approve, "
                    f"not {role.value}"
                )
            rules[name.lower()] = StageRule(role, approvals)
        return cls(rules)


DEFAULT_POLICY = Policy(
    {
        "development": StageRule(Role.CONTRIBUTOR),
        "staging": StageRule(Role.CONTRIBUTOR),
        "production": StageRule(Role.REVIEWER, approvals=1),
        "archived": StageRule(Role.REVIEWER),
    }
)
