"""Promotion gates: a small policy of rules a version must meet to enter a stage.

A policy maps a stage to its gate::

    production:
      require: [code_commit, dataset_version]        # lineage fields that must be set
      rules:
        - auc >= 0.90                                 # absolute threshold
        - auc >= production.auc - 0.005               # against the stage's current holder
        - latency_ms <= production.latency_ms * 1.10

A rule is ``METRIC OP BOUND`` with OP one of ``>= > <= < == !=`` and BOUND a number or
``STAGE.METRIC``, optionally followed by ``+ - * /`` and a number. Rules are parsed by
the small tokenizer below, never evaluated as Python.

Outcomes: a candidate without the metric fails; a comparison when the stage has no holder
(a first promotion) is skipped, which counts as passing; a holder without the metric
fails, because a baseline that cannot be computed must not wave a version through.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from modelreg.domain.entities import LINEAGE_FIELDS, ModelVersion
from modelreg.domain.names import validate_key
from modelreg.domain.times import iso_or_none
from modelreg.errors import InvalidArgument

MAX_RULES = 100
MAX_POLICY_TEXT = 100_000
_STAGE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Tokens: numbers, comparison and arithmetic operators, and names (metric keys have the
# same alphabet as in search filters, minus spaces, which separate tokens here).
_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<cmp>>=|<=|==|!=|>|<)"
    r"|(?P<arith>[-+*/])"
    r"|(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-:/]*))"
)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
LINEAGE_REQUIREMENTS = (*LINEAGE_FIELDS, "parents")


def _number(text: str) -> str:
    return repr(float(text)) if "." in text or "e" in text.lower() else str(int(text))


@dataclass(frozen=True, slots=True)
class Rule:
    """One metric rule: ``metric op constant`` or ``metric op stage.baseline [arith operand]``."""

    metric: str
    op: str
    constant: float | None = None
    stage: str | None = None
    baseline: str | None = None
    arith: str | None = None
    operand: float | None = None
    text: str = ""

    @property
    def kind(self) -> str:
        """``threshold`` (against a number) or ``comparison`` (against a stage's holder)."""
        return "threshold" if self.stage is None else "comparison"

    def bound(self, baseline_value: float | None = None) -> float:
        """The number the metric is compared with."""
        if self.constant is not None:
            return self.constant
        assert baseline_value is not None
        if self.arith is None or self.operand is None:
            return baseline_value
        return _ARITH[self.arith](baseline_value, self.operand)

    def holds(self, value: float, bound: float) -> bool:
        """Whether ``value OP bound``; equality within 1e-9 relative, so that a bound
        computed in floating point (0.93 - 0.005) does not fail an exact 0.925."""
        close = math.isclose(value, bound, rel_tol=1e-9, abs_tol=1e-12)
        if self.op in (">=", "<=", "=="):
            return close or _COMPARE[self.op](value, bound)
        if self.op in (">", "<"):
            return not close and _COMPARE[self.op](value, bound)
        return not close


def parse_rule(text: object) -> Rule:
    """Parse ``auc >= 0.9`` or ``latency_ms <= production.latency_ms * 1.1``; InvalidArgument
    names the position of a syntax error."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"a gate rule must be a non-empty string, not {text!r}")
    tokens: list[tuple[str, str, int]] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise InvalidArgument(
                f"gate rule {text!r}: unexpected character at position {position}"
            )
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    kinds = [k for k, _, _ in tokens]

    def fail(why: str) -> InvalidArgument:
        return InvalidArgument(
            f"gate rule {text!r}: {why}; expected METRIC OP NUMBER or "
            "METRIC OP STAGE.METRIC [+-*/ NUMBER], e.g. 'auc >= production.auc - 0.005'"
        )

    # A signed number right after an arithmetic slot reads as "- 0.005", not "-0.005".
    if len(tokens) == 4 and kinds[:3] == ["name", "cmp", "name"] and kinds[3] == "num":
        sign, digits = tokens[3][1][:1], tokens[3][1][1:]
        if sign in "+-" and digits:
            tokens = [*tokens[:3], ("arith", sign, tokens[3][2]), ("num", digits, tokens[3][2])]
            kinds = [k for k, _, _ in tokens]
    if len(tokens) < 3 or kinds[0] != "name" or kinds[1] != "cmp":
        raise fail("it must start with a metric and a comparison")
    metric = validate_key(tokens[0][1], "metric")
    op = tokens[1][1]
    if kinds[2:] == ["num"]:
        constant = float(tokens[2][1])
        return Rule(metric, op, constant=constant, text=f"{metric} {op} {_number(tokens[2][1])}")
    if kinds[2] != "name" or kinds[3:] not in ([], ["arith", "num"]):
        raise fail("the right side is not a number or STAGE.METRIC [op number]")
    stage, dot, baseline = tokens[2][1].partition(".")
    if not dot or not _STAGE.match(stage) or not baseline:
        raise fail(f"{tokens[2][1]!r} is not STAGE.METRIC")
    validate_key(baseline, "metric")
    if len(tokens) == 3:
        return Rule(
            metric, op, stage=stage, baseline=baseline, text=f"{metric} {op} {stage}.{baseline}"
        )
    arith, operand = tokens[3][1], float(tokens[4][1])
    if arith == "/" and operand == 0:
        raise fail("division by zero")
    return Rule(
        metric,
        op,
        stage=stage,
        baseline=baseline,
        arith=arith,
        operand=operand,
        text=f"{metric} {op} {stage}.{baseline} {arith} {_number(tokens[4][1])}",
    )


@dataclass(frozen=True, slots=True)
class StageGate:
    """What a version must meet to enter one stage."""

    require: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"require": list(self.require), "rules": [r.text for r in self.rules]}


def parse_gates(data: object) -> dict[str, StageGate]:
    """A policy document (already parsed from YAML or JSON) as stage -> gate."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidArgument("a gate policy must map stage names to gates")
    gates: dict[str, StageGate] = {}
    for stage, body in data.items():
        if not isinstance(stage, str) or not _STAGE.match(stage):
            raise InvalidArgument(f"gate policy: {stage!r} is not a stage name")
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise InvalidArgument(f"gate policy for {stage!r} must have 'require' and/or 'rules'")
        unknown = set(body) - {"require", "rules"}
        if unknown:
            raise InvalidArgument(
                f"gate policy for {stage!r}: unknown keys {', '.join(sorted(map(str, unknown)))}; "
                "known: require, rules"
            )
        require = body.get("require") or []
        rules = body.get("rules") or []
        if not isinstance(require, list) or not all(isinstance(r, str) for r in require):
            raise InvalidArgument(f"gate policy for {stage!r}: 'require' must list lineage fields")
        for name in require:
            if name not in LINEAGE_REQUIREMENTS:
                raise InvalidArgument(
                    f"gate policy for {stage!r}: unknown lineage field {name!r}; "
                    f"known: {', '.join(LINEAGE_REQUIREMENTS)}"
                )
        if not isinstance(rules, list):
            raise InvalidArgument(f"gate policy for {stage!r}: 'rules' must be a list of rules")
        if len(rules) > MAX_RULES:
            raise InvalidArgument(f"gate policy for {stage!r}: more than {MAX_RULES} rules")
        gate = StageGate(tuple(dict.fromkeys(require)), tuple(parse_rule(r) for r in rules))
        if gate.require or gate.rules:
            gates[stage] = gate
    return gates


def gates_from_text(text: str) -> dict[str, StageGate]:
    """Parse a policy from YAML or JSON text (JSON is YAML too)."""
    if len(text) > MAX_POLICY_TEXT:
        raise InvalidArgument(f"a gate policy is limited to {MAX_POLICY_TEXT} characters")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"gate policy is not valid YAML or JSON: {exc}") from None
    return parse_gates(data)


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """One revision of the gates of a scope: a model, or the registry (``model`` None).

    Revision 0 means no policy was ever set for the scope."""

    gates: dict[str, StageGate]
    model: str | None = None
    revision: int = 0
    created_at: datetime | None = None
    created_by: str | None = None

    def document(self) -> dict[str, Any]:
        """The policy itself, as it would be written in a file."""
        return {stage: gate.to_dict() for stage, gate in self.gates.items()}

    def to_json(self) -> str:
        return json.dumps(self.document(), sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "revision": self.revision,
            "created_at": iso_or_none(self.created_at),
            "created_by": self.created_by,
            "gates": self.document(),
        }


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule of a gate, evaluated: its values and outcome (passed, failed, skipped)."""

    rule: str
    kind: str  # lineage | threshold | comparison
    outcome: str
    value: Any = None
    bound: float | None = None
    baseline: str | None = None  # the holder compared against, e.g. fraud/7
    baseline_value: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "outcome": self.outcome,
            "value": self.value,
            "bound": self.bound,
            "baseline": self.baseline,
            "baseline_value": self.baseline_value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class GateEvaluation:
    """A candidate's gate for one stage, rule by rule."""

    candidate: str
    stage: str
    results: tuple[RuleResult, ...] = ()
    policy_model: str | None = None  # whose policy applied: a model's, or None: registry's
    policy_revision: int = 0
    overridden: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.outcome == "failed")

    def summary(self) -> str:
        """One sentence naming every failed rule and its values."""
        if self.passed:
            return f"{self.candidate} passes the {self.stage} gate"
        failed = "; ".join(r.message for r in self.failures)
        return f"{self.candidate} fails the {self.stage} gate: {failed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "stage": self.stage,
            "passed": self.passed,
            "overridden": self.overridden,
            "policy_model": self.policy_model,
            "policy_revision": self.policy_revision,
            "results": [r.to_dict() for r in self.results],
        }


def evaluation_from_dict(data: Mapping[str, Any]) -> GateEvaluation:
    """The inverse of ``GateEvaluation.to_dict``."""
    return GateEvaluation(
        candidate=data["candidate"],
        stage=data["stage"],
        results=tuple(
            RuleResult(
                rule=r["rule"],
                kind=r["kind"],
                outcome=r["outcome"],
                value=r["value"],
                bound=r["bound"],
                baseline=r["baseline"],
                baseline_value=r["baseline_value"],
                message=r["message"],
            )
            for r in data["results"]
        ),
        policy_model=data.get("policy_model"),
        policy_revision=int(data.get("policy_revision") or 0),
        overridden=bool(data.get("overridden")),
    )


def policy_from_dict(data: Mapping[str, Any]) -> GatePolicy:
    """The inverse of ``GatePolicy.to_dict``."""
    created = data.get("created_at")
    return GatePolicy(
        gates=parse_gates(data.get("gates")),
        model=data.get("model"),
        revision=int(data.get("revision") or 0),
        created_at=datetime.fromisoformat(created) if created else None,
        created_by=data.get("created_by"),
    )


@dataclass
class _Evaluator:
    candidate: ModelVersion
    holders: Mapping[str, ModelVersion | None]
    results: list[RuleResult] = field(default_factory=list)

    def lineage(self, name: str) -> None:
        value = self.candidate.lineage.to_dict().get(name)
        present = bool(value)
        self.results.append(
            RuleResult(
                rule=f"require {name}",
                kind="lineage",
                outcome="passed" if present else "failed",
                value=value if present else None,
                message=f"lineage {name} is set"
                if present
                else f"required lineage field {name} is not set on {self.candidate.ref}",
            )
        )

    def rule(self, rule: Rule) -> None:
        value = self.candidate.metrics.get(rule.metric)
        if rule.stage is None:
            self._compare(rule, value, rule.bound(), None, None)
            return
        holder = self.holders.get(rule.stage)
        if holder is None:
            self.results.append(
                RuleResult(
                    rule.text,
                    rule.kind,
                    "skipped",
                    value=value,
                    message=f"{rule.text}: skipped, no version is in {rule.stage}",
                )
            )
            return
        assert rule.baseline is not None
        base = holder.metrics.get(rule.baseline)
        if base is None:
            self.results.append(
                RuleResult(
                    rule.text,
                    rule.kind,
                    "failed",
                    value=value,
                    baseline=holder.ref,
                    message=f"{rule.text}: {rule.stage} holder {holder.ref} has no metric "
                    f"{rule.baseline!r}",
                )
            )
            return
        bound = rule.bound(base)
        self._compare(rule, value, bound, holder.ref, base)

    def _compare(
        self,
        rule: Rule,
        value: float | None,
        bound: float,
        baseline: str | None,
        base: float | None,
    ) -> None:
        against = f" ({rule.stage}.{rule.baseline} = {base:g} on {baseline})" if baseline else ""
        if value is None:
            outcome = "failed"
            message = f"{rule.text}: {self.candidate.ref} has no metric {rule.metric!r}"
        elif not math.isfinite(bound):
            outcome = "failed"
            message = f"{rule.text}: the bound is not a finite number{against}"
        else:
            outcome = "passed" if rule.holds(value, bound) else "failed"
            message = f"{rule.text}: {rule.metric} = {value:g}, needs {rule.op} {bound:g}{against}"
        self.results.append(
            RuleResult(rule.text, rule.kind, outcome, value, bound, baseline, base, message)
        )


def evaluate(
    candidate: ModelVersion,
    stage: str,
    gate: StageGate | None,
    holders: Mapping[str, ModelVersion | None],
    *,
    policy_model: str | None = None,
    policy_revision: int = 0,
) -> GateEvaluation:
    """Evaluate ``candidate`` against the gate of ``stage``; ``holders`` gives the current
    holder (or None) of every stage the rules compare with."""
    evaluator = _Evaluator(candidate, holders)
    if gate is not None:
        for name in gate.require:
            evaluator.lineage(name)
        for rule in gate.rules:
            evaluator.rule(rule)
    return GateEvaluation(
        candidate=candidate.ref,
        stage=stage,
        results=tuple(evaluator.results),
        policy_model=policy_model,
        policy_revision=policy_revision,
    )
