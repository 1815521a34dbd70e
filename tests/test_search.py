"""Contract: the filter language over models and versions, ordering and cursor paging."""

from __future__ import annotations

import base64
import io
import json

import pytest

from modelreg import errors
from modelreg.domain.manifest import FileEntry
from modelreg.embedded import EmbeddedRegistry
from modelreg.protocol import Registry


@pytest.fixture
def populated(reg: Registry, backing: EmbeddedRegistry) -> Registry:
    blob = backing.blobs.put(io.BytesIO(b"weights"))
    files = [FileEntry("model.bin", blob.size, blob.sha256)]
    specs = [
        ("fraud-cards", 0.91, 6, "risk", "gini"),
        ("fraud-cards", 0.95, 8, "risk", "entropy"),
        ("fraud-wire", 0.89, 6, "risk", "gini"),
        ("churn", 0.97, 4, "growth", "gini"),
        ("churn", None, 6, "growth", "it's"),
    ]
    for name, auc, depth, team, criterion in specs:
        metrics = {"auc": auc} if auc is not None else {}
        backing.service.create_version(
            backing.principal,
            name,
            files,
            metrics=metrics,
            params={"depth": depth, "criterion": criterion},
            tags={"team": team},
            lineage={"run_id": f"run-{name}-{depth}"},
        )
    reg.transition("fraud-cards/2", "staging")
    reg.transition("fraud-cards/2", "production")
    reg.set_alias("churn", "champion", 1)
    reg.create_model("empty", tags={"team": "risk"})
    reg.set_tags("fraud-cards", {"team": "risk"})
    reg.set_tags("churn", {"team": "growth"})
    return reg


def refs(reg: Registry, filter: str | None, **kw: object) -> list[str]:
    return [v.ref for v in reg.search_versions(filter, **kw).all()]  # type: ignore[arg-type]


def test_issue_example(populated: Registry) -> None:
    query = (
        "name LIKE 'fraud%' AND stage = 'production' AND metrics.auc >= 0.9 "
        "AND params.depth = 8 AND tags.team = 'risk'"
    )
    assert refs(populated, query) == ["fraud-cards/2"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("metrics.auc >= 0.9", ["churn/1", "fraud-cards/2", "fraud-cards/1"]),
        ("metrics.auc < 0.9", ["fraud-wire/1"]),
        ("metrics.auc IS NULL", ["churn/2"]),
        ("params.depth = 6", ["churn/2", "fraud-cards/1", "fraud-wire/1"]),
        ("params.depth > 5 AND params.depth <= 6", ["churn/2", "fraud-cards/1", "fraud-wire/1"]),
        ("params.criterion = 'it''s'", ["churn/2"]),
        ("params.criterion IN ('entropy', 'it''s')", ["churn/2", "fraud-cards/2"]),
        ("tags.team != 'risk'", ["churn/2", "churn/1"]),
        ("stage = 'production' OR alias = 'champion'", ["churn/1", "fraud-cards/2"]),
        ("NOT name LIKE 'fraud%'", ["churn/2", "churn/1"]),
        ("name ILIKE 'FRAUD-C%' AND version = 1", ["fraud-cards/1"]),
        ("name LIKE 'FRAUD%'", []),
        ("run_id = 'run-churn-4'", ["churn/1"]),
        ("version IN (2) AND stage != 'production'", ["churn/2"]),
        (
            "(name = 'churn' OR name = 'fraud-wire') AND metrics.auc > 0.5",
            ["churn/1", "fraud-wire/1"],
        ),
        ("tags.missing IS NOT NULL", []),
        ("size = 7", ["churn/2", "churn/1", "fraud-cards/2", "fraud-cards/1", "fraud-wire/1"]),
        (
            "created_at > '2000-01-01T00:00:00'",
            ["churn/2", "churn/1", "fraud-cards/2", "fraud-cards/1", "fraud-wire/1"],
        ),
    ],
)
def test_filters(populated: Registry, query: str, expected: list[str]) -> None:
    assert refs(populated, query) == expected


def test_order_by_metric_with_missing_values_last(populated: Registry) -> None:
    assert refs(populated, None, order_by=["-metrics.auc"]) == [
        "churn/1",
        "fraud-cards/2",
        "fraud-cards/1",
        "fraud-wire/1",
        "churn/2",
    ]
    assert refs(populated, None, order_by="metrics.auc")[-1] == "churn/2"


@pytest.mark.parametrize(
    "order",
    [
        ["-metrics.auc"],
        ["metrics.auc"],
        ["name", "-version"],
        ["params.depth", "name"],
        ["-created_at"],
        ["tags.team", "-version"],
    ],
)
@pytest.mark.parametrize("query", [None, "metrics.auc > 0.5 AND params.depth >= 4"])
def test_paging_visits_every_row_once(
    populated: Registry, order: list[str], query: str | None
) -> None:
    whole = refs(populated, query, order_by=order)
    for size in (1, 2, 3):
        seen: list[str] = []
        token: str | None = None
        while True:
            page = populated.search_versions(
                query, order_by=order, page_size=size, page_token=token
            )
            seen.extend(v.ref for v in page.items)
            token = page.next_page_token
            if token is None:
                break
        assert seen == whole


def test_page_token_from_another_query_is_refused(populated: Registry) -> None:
    page = populated.search_versions("metrics.auc > 0", page_size=1)
    assert page.next_page_token is not None
    with pytest.raises(errors.InvalidArgument, match="page token"):
        populated.search_versions("metrics.auc > 0.5", page_size=1, page_token=page.next_page_token)
    with pytest.raises(errors.InvalidArgument, match="page token"):
        populated.search_versions(page_token="garbage!")


@pytest.mark.parametrize("size", [0, -1, 1001, True])
def test_bad_page_size(populated: Registry, size: int) -> None:
    with pytest.raises(errors.InvalidArgument, match="page_size"):
        populated.search_versions(page_size=size)


@pytest.mark.parametrize(
    ("query", "position"),
    [
        ("metrics.auc >= ", 15),
        ("name = 'open", 7),
        ("stage = 'production' AND", 24),
        ("colour = 'red'", 0),
        ("metrics.auc = 'high'", 0),
        ("name = 3", 0),
        ("version LIKE '1%'", 0),
        ("metrics.auc LIKE 'x'", 0),
    ],
)
def test_filter_errors_name_the_position(populated: Registry, query: str, position: int) -> None:
    with pytest.raises(errors.InvalidFilter) as info:
        populated.search_versions(query)
    assert info.value.code == "INVALID_FILTER"
    assert info.value.position == position
    assert f"position {position}" in info.value.message


def test_values_are_parameters_not_sql(populated: Registry) -> None:
    assert refs(populated, "name = 'x'' OR ''1''=''1'") == []
    assert refs(populated, "tags.`team' OR 1=1 --` = 'risk'") == []


def test_search_models(populated: Registry) -> None:
    names = [m.name for m in populated.search_models("tags.team = 'risk'").all()]
    assert names == ["empty", "fraud-cards"]
    names = [m.name for m in populated.search_models("name LIKE 'fraud%'").all()]
    assert names == ["fraud-cards", "fraud-wire"]
    ordered = [m.name for m in populated.search_models(order_by=["-name"], page_size=2).all()]
    assert ordered == ["fraud-wire", "fraud-cards", "empty", "churn"]
    with pytest.raises(errors.InvalidFilter):
        populated.search_models("metrics.auc > 1")
    with pytest.raises(errors.InvalidFilter):
        populated.search_models(order_by=["stage"])


def test_list_versions(populated: Registry) -> None:
    assert [v.version for v in populated.list_versions("churn")] == [2, 1]
    with pytest.raises(errors.NotFound):
        populated.list_versions("ghost")


def test_hand_made_token_with_wrong_types_is_refused(populated: Registry) -> None:
    page = populated.search_versions(order_by=["-metrics.auc"], page_size=1)
    assert page.next_page_token is not None
    padded = page.next_page_token + "=" * (-len(page.next_page_token) % 4)
    data = json.loads(base64.urlsafe_b64decode(padded))
    data["v"] = ["not a number" for _ in data["v"]]
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    with pytest.raises(errors.InvalidArgument, match="page token"):
        populated.search_versions(order_by=["-metrics.auc"], page_size=1, page_token=forged)


def test_metric_required_by_the_filter_orders_the_same(populated: Registry) -> None:
    # The filter makes auc mandatory, which switches to the index-friendly sort path;
    # the order must be the one the general path gives for the same rows.
    fast = refs(populated, "metrics.auc >= 0.85", order_by=["-metrics.auc"])
    general = [r for r in refs(populated, None, order_by=["-metrics.auc"]) if r in set(fast)]
    assert fast == general == ["churn/1", "fraud-cards/2", "fraud-cards/1", "fraud-wire/1"]
