"""Contract: promotion gates refuse, explain and record; champion/challenger compare."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelreg import errors
from modelreg.protocol import Registry

LINEAGE = {"code_commit": "abc123", "dataset_version": "2026-11"}
POLICY = """
production:
  require: [code_commit, dataset_version]
  rules:
    - auc >= 0.90
    - auc >= production.auc - 0.005
    - latency_ms <= production.latency_ms * 1.10
"""

Register = Callable[..., str]


@pytest.fixture
def add(reg: Registry, model_dir: Callable[..., Path]) -> Register:
    """Register a fraud version in staging with the given metrics; returns its ref."""
    counter = iter(range(1000))

    def make(lineage: dict[str, Any] | None = None, **metrics: float) -> str:
        mv = reg.register(
            "fraud",
            model_dir(str(next(counter))),
            metrics=metrics,
            lineage=LINEAGE if lineage is None else lineage,
        )
        reg.transition(mv.ref, "staging")
        return mv.ref

    return make


@pytest.fixture
def champion(reg: Registry, add: Register) -> str:
    """fraud/1 in production (auc 0.93, latency 100 ms) under the POLICY gates."""
    ref = add(auc=0.93, latency_ms=100.0)
    reg.transition(ref, "production")
    reg.set_gates(POLICY)
    return ref


def refused(reg: Registry, ref: str) -> errors.PolicyViolation:
    with pytest.raises(errors.PolicyViolation) as caught:
        reg.transition(ref, "production", reason="try")
    assert caught.value.code == "POLICY_VIOLATION"
    # Nothing half-written: the candidate stays where it was, the champion too.
    assert reg.get(ref).stage == "staging"
    assert reg.resolve("fraud@production").ref == "fraud/1"
    return caught.value


def outcomes(error: errors.PolicyViolation) -> dict[str, str]:
    return {r["rule"]: r["outcome"] for r in error.details["evaluation"]["results"]}


def test_a_candidate_that_meets_every_rule_is_promoted_and_the_evaluation_kept(
    reg: Registry, champion: str, add: Register
) -> None:
    ref = add(auc=0.928, latency_ms=109.0)
    moved = reg.transition(ref, "production", reason="beats the champion")
    assert moved.stage == "production"
    event = [e for e in reg.history("fraud").all() if e.kind == "stage_changed"][-1]
    assert (event.version, event.to_stage) == (2, "production")
    gates = event.details["gates"]
    assert gates["passed"] is True
    assert gates["overridden"] is False
    assert gates["policy_revision"] == 1
    rules = {r["rule"]: r for r in gates["results"]}
    assert set(rules) == {
        "require code_commit",
        "require dataset_version",
        "auc >= 0.9",
        "auc >= production.auc - 0.005",
        "latency_ms <= production.latency_ms * 1.1",
    }
    comparison = rules["auc >= production.auc - 0.005"]
    assert comparison["baseline"] == champion
    assert comparison["baseline_value"] == pytest.approx(0.93)
    assert comparison["bound"] == pytest.approx(0.925)
    assert comparison["value"] == pytest.approx(0.928)


def test_missing_lineage_fails_the_require_rule(
    reg: Registry, champion: str, add: Register
) -> None:
    ref = add({"code_commit": "abc123"}, auc=0.95, latency_ms=90.0)
    error = refused(reg, ref)
    assert "required lineage field dataset_version is not set on fraud/2" in error.message
    assert outcomes(error)["require dataset_version"] == "failed"
    assert outcomes(error)["require code_commit"] == "passed"


def test_an_absolute_threshold_names_the_rule_and_both_values(
    reg: Registry, champion: str, add: Register
) -> None:
    reg.set_gates({"production": {"rules": ["auc >= 0.90"]}})
    error = refused(reg, add(auc=0.85, latency_ms=90.0))
    assert "auc >= 0.9: auc = 0.85, needs >= 0.9" in error.message
    assert outcomes(error) == {"auc >= 0.9": "failed"}


def test_comparisons_with_the_holder_name_each_failed_rule(
    reg: Registry, champion: str, add: Register
) -> None:
    error = refused(reg, add(auc=0.92, latency_ms=111.0))
    assert "fraud/2 fails the production gate" in error.message
    assert "auc = 0.92, needs >= 0.925 (production.auc = 0.93 on fraud/1)" in error.message
    assert (
        "latency_ms = 111, needs <= 110 (production.latency_ms = 100 on fraud/1)" in error.message
    )
    assert outcomes(error)["auc >= 0.9"] == "passed"


def test_a_metric_missing_on_the_candidate_fails(
    reg: Registry, champion: str, add: Register
) -> None:
    error = refused(reg, add(auc=0.95))
    assert "fraud/2 has no metric 'latency_ms'" in error.message
    assert outcomes(error)["latency_ms <= production.latency_ms * 1.1"] == "failed"


def test_a_metric_missing_on_the_holder_fails(reg: Registry, add: Register) -> None:
    reg.transition(add(auc=0.93), "production")
    reg.set_gates(POLICY)
    error = refused(reg, add(auc=0.95, latency_ms=50.0))
    assert "production holder fraud/1 has no metric 'latency_ms'" in error.message


def test_first_promotion_skips_comparisons_but_keeps_thresholds(
    reg: Registry, add: Register
) -> None:
    reg.set_gates(POLICY)
    low = add(auc=0.85, latency_ms=100.0)
    with pytest.raises(errors.PolicyViolation, match=r"auc >= 0\.9: auc = 0\.85"):
        reg.transition(low, "production")
    ref = add(auc=0.91, latency_ms=100.0)
    reg.transition(ref, "production")
    gates = [e for e in reg.history("fraud").all() if e.kind == "stage_changed"][-1].details[
        "gates"
    ]
    skipped = {r["rule"] for r in gates["results"] if r["outcome"] == "skipped"}
    assert skipped == {"auc >= production.auc - 0.005", "latency_ms <= production.latency_ms * 1.1"}


def test_override_needs_a_reason_and_is_recorded(
    reg: Registry, champion: str, add: Register
) -> None:
    ref = add(auc=0.5, latency_ms=500.0)
    with pytest.raises(errors.InvalidArgument, match="needs a reason"):
        reg.transition(ref, "production", override=True)
    assert reg.get(ref).stage == "staging"
    moved = reg.transition(ref, "production", override=True, reason="incident hotfix INC-7")
    assert moved.stage == "production"
    event = [e for e in reg.history("fraud").all() if e.kind == "stage_changed"][-1]
    assert event.reason == "incident hotfix INC-7"
    assert event.details["gates"]["overridden"] is True
    assert event.details["gates"]["passed"] is False


def test_stages_without_gates_and_gates_of_other_stages_do_not_interfere(
    reg: Registry, champion: str, add: Register
) -> None:
    candidate = add(auc=0.5, latency_ms=100.0)
    reg.set_gates({"staging": {"rules": ["auc >= 0.99"]}}, model="fraud")
    # The model's policy has no production gate: the registry's applies there.
    error = refused(reg, candidate)
    assert error.details["evaluation"]["policy_model"] is None
    mv = reg.register("fraud", Path(__file__))
    with pytest.raises(errors.PolicyViolation, match="fraud/3 has no metric 'auc'"):
        reg.transition(mv.ref, "staging")
    reg.transition(mv.ref, "archived")  # no gate there


def test_a_model_policy_replaces_the_registry_gate_for_its_stages(
    reg: Registry, champion: str, add: Register
) -> None:
    reg.set_gates({"production": {"rules": ["auc >= 0.5"]}}, model="fraud")
    ref = add(auc=0.6)
    reg.transition(ref, "production")
    event = [e for e in reg.history("fraud").all() if e.kind == "stage_changed"][-1]
    assert event.details["gates"]["policy_model"] == "fraud"


def test_policies_are_versioned_and_every_change_is_an_event(
    reg: Registry, model_dir: Callable[..., Path]
) -> None:
    assert reg.get_gates().revision == 0
    assert reg.get_gates().gates == {}
    first = reg.set_gates(POLICY)
    second = reg.set_gates('{"production": {"rules": ["auc >= 0.8"]}}')
    assert (first.revision, second.revision) == (1, 2)
    current = reg.get_gates()
    assert current.revision == 2
    assert current.document() == {"production": {"require": [], "rules": ["auc >= 0.8"]}}
    assert current.created_by == "alice"
    cleared = reg.set_gates({})
    assert (cleared.revision, cleared.gates) == (3, {})
    reg.register("fraud", model_dir("x"))
    own = reg.set_gates({"staging": {"require": ["run_id"]}}, model="fraud")
    assert own.revision == 1
    assert own.model == "fraud"
    events = [e for e in reg.history("fraud").all() if e.kind == "gates_set"]
    assert len(events) == 1
    assert events[0].details["after"] == {"staging": {"require": ["run_id"], "rules": []}}
    assert events[0].details["before"] == {}


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("production: [1, 2]", "must have 'require' and/or 'rules'"),
        ({"production": {"rules": ["auc >>= 0.9"]}}, "gate rule"),
        ({"production": {"rules": ["__import__('os').system('x') >= 1"]}}, "gate rule"),
        ({"production": {"rules": ["auc >= staging.auc ** 2"]}}, "gate rule"),
        ({"production": {"rules": ["auc >= production.auc / 0"]}}, "division by zero"),
        ({"production": {"require": ["colour"]}}, "unknown lineage field 'colour'"),
        ({"production": {"rules": ["auc >= shadow.auc"]}}, "stage 'shadow'"),
        ({"shadow": {"rules": ["auc >= 0.9"]}}, "stage 'shadow'"),
        ({"production": {"when": "always"}}, "unknown keys when"),
        ("production: {rules: [", "not valid YAML or JSON"),
        ("[1, 2]", "must map stage names"),
    ],
)
def test_bad_policies_are_refused_and_nothing_is_stored(
    reg: Registry, policy: Any, message: str
) -> None:
    with pytest.raises(errors.InvalidArgument, match=message.replace("*", r"\*")):
        reg.set_gates(policy)
    assert reg.get_gates().revision == 0


def test_gates_of_an_unknown_model_are_not_found(reg: Registry) -> None:
    with pytest.raises(errors.NotFound):
        reg.get_gates("nope")
    with pytest.raises(errors.NotFound):
        reg.set_gates(POLICY, model="nope")


def test_check_gates_evaluates_without_moving(reg: Registry, champion: str, add: Register) -> None:
    ref = add(auc=0.92, latency_ms=100.0)
    evaluation = reg.check_gates(ref, "production")
    assert not evaluation.passed
    assert [r.rule for r in evaluation.failures] == ["auc >= production.auc - 0.005"]
    assert reg.get(ref).stage == "staging"
    assert reg.check_gates(ref, "archived").results == ()
    with pytest.raises(errors.NotFound):
        reg.check_gates(ref, "nowhere")


def test_compare_champion_and_challenger_with_the_gate_verdict(
    reg: Registry, champion: str, add: Register
) -> None:
    ref = add(auc=0.95, latency_ms=120.0)
    reg.set_alias("fraud", "candidate", 2)
    result = reg.compare("fraud@candidate", "fraud@production")
    assert (result.a.ref, result.b.ref) == (ref, champion)
    auc = next(d for d in result.metrics if d.key == "auc")
    assert auc.delta == pytest.approx(0.93 - 0.95)
    assert result.gate is not None
    assert (result.gate.candidate, result.gate.stage) == (ref, "production")
    assert [r.rule for r in result.gate.failures] == ["latency_ms <= production.latency_ms * 1.1"]
    # The other order asks the same question.
    reverse = reg.compare("fraud@production", "fraud@candidate")
    assert reverse.gate is not None
    assert reverse.gate.candidate == ref
    # Versions in one stage: no promotion question.
    assert reg.compare("fraud/2", "fraud/2").gate is None
