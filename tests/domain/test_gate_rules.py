"""The gate rule parser and evaluation, without a registry."""

from __future__ import annotations

import pytest

from modelreg import errors
from modelreg.domain.gates import parse_rule


@pytest.mark.parametrize(
    ("text", "canonical", "bound"),
    [
        ("auc >= 0.90", "auc >= 0.9", 0.9),
        ("auc>=0.9", "auc >= 0.9", 0.9),
        ("loss < -1", "loss < -1", -1.0),
        ("auc >= production.auc - 0.005", "auc >= production.auc - 0.005", 0.925),
        ("auc >= production.auc -0.005", "auc >= production.auc - 0.005", 0.925),
        (
            "latency_ms <= production.latency_ms*1.10",
            "latency_ms <= production.latency_ms * 1.1",
            110.0,
        ),
        ("f1 > staging.f1 / 2", "f1 > staging.f1 / 2", 0.465),
        ("auc == production.auc", "auc == production.auc", 0.93),
    ],
)
def test_rules_parse_to_a_canonical_form(text: str, canonical: str, bound: float) -> None:
    rule = parse_rule(text)
    assert rule.text == canonical
    baseline = 100.0 if "latency" in text else 0.93
    assert rule.bound(None if rule.stage is None else baseline) == pytest.approx(bound)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "auc",
        "auc >=",
        ">= 0.9",
        "auc >= 0.9 extra",
        "auc >= production",
        "auc >= production.auc +",
        "auc >= production.auc + staging.auc",
        "auc >= 0.9 * 2",
        "auc = 0.9",
        "auc >= (0.9)",
        "auc >= production.auc ** 2",
        "os.system('rm') >= 1",
    ],
)
def test_malformed_rules_are_refused(text: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        parse_rule(text)


def test_comparisons_tolerate_floating_point_bounds() -> None:
    rule = parse_rule("auc >= production.auc - 0.005")
    bound = rule.bound(0.93)
    assert rule.holds(0.925, bound)
    assert not rule.holds(0.9249, bound)
    strict = parse_rule("auc > production.auc - 0.005")
    assert not strict.holds(0.925, strict.bound(0.93))
    assert parse_rule("auc != 1").holds(0.5, 1.0)
