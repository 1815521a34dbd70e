"""Turning command-line strings into SDK arguments (in-process: pure functions)."""

from __future__ import annotations

import pytest

from modelreg.cli.parsing import parse_dataset, parse_metrics, parse_params, parse_tags
from modelreg.errors import InvalidArgument


def test_params_keep_json_scalar_types_and_fall_back_to_strings() -> None:
    params = parse_params(
        ["depth=6", "lr=0.1", "early=true", "none=null", "name=gbm", 'quoted="6"', "eq=a=b"]
    )
    assert params == {
        "depth": 6,
        "lr": 0.1,
        "early": True,
        "none": None,
        "name": "gbm",
        "quoted": "6",
        "eq": "a=b",
    }
    assert type(params["depth"]) is int


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "[1, 2]", '{"a": 1}', ""])
def test_params_that_are_not_finite_scalars_stay_text(raw: str) -> None:
    assert parse_params([f"p={raw}"]) == {"p": raw}


def test_metrics_are_floats() -> None:
    assert parse_metrics(["auc=0.9", "n=3"]) == {"auc": 0.9, "n": 3.0}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [(["auc=high"], "must be a number"), (["auc"], "KEY=VALUE"), (["=1"], "KEY=VALUE")],
)
def test_bad_metrics_are_invalid_arguments(pairs: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_metrics(pairs)


def test_tags_stay_strings() -> None:
    assert parse_tags(["team=risk", "note="]) == {"team": "risk", "note": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("tx@2026-11", ("tx", "2026-11")), ("tx", ("tx", None)), ("a@b@c", ("a@b", "c"))],
)
def test_dataset_splits_at_the_last_at(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_dataset(text) == expected


@pytest.mark.parametrize("text", ["tx@", "@v1"])
def test_dataset_needs_both_parts_around_the_at(text: str) -> None:
    with pytest.raises(InvalidArgument, match="NAME@VERSION"):
        parse_dataset(text)
