"""Contract: lifecycle stages, exclusivity, aliases, references and history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelreg import errors
from modelreg.domain.lifecycle import Lifecycle
from modelreg.embedded import EmbeddedRegistry
from modelreg.protocol import Registry
from modelreg.store import tables


@pytest.fixture
def three(reg: Registry, model_dir: Callable[..., Path]) -> Registry:
    for seed in "abc":
        reg.register("fraud", model_dir(seed), metrics={"auc": 0.8 + 0.05 * "abc".index(seed)})
    return reg


def promote(reg: Registry, ref: str, reason: str = "") -> None:
    reg.transition(ref, "staging")
    reg.transition(ref, "production", reason=reason)


def test_default_path_to_production(three: Registry) -> None:
    mv = three.transition("fraud/2", "staging", reason="candidate")
    assert mv.stage == "staging"
    mv = three.transition("fraud/2", "production", reason="beats v1")
    assert mv.stage == "production"
    assert three.resolve("fraud@production").version == 2
    with pytest.raises(errors.NotFound):
        three.resolve("fraud@staging")


def test_production_is_exclusive_and_displaces_the_holder(three: Registry) -> None:
    promote(three, "fraud/1")
    promote(three, "fraud/3", reason="better auc")
    assert three.get("fraud/1").stage == "archived"
    assert three.get("fraud/3").stage == "production"
    assert three.resolve("fraud@production").version == 3
    moves = [
        (e.version, e.from_stage, e.to_stage, e.actor)
        for e in three.history("fraud").all()
        if e.kind == "stage_changed"
    ]
    assert moves[-2:] == [
        (1, "production", "archived", "alice"),
        (3, "staging", "production", "alice"),
    ]
    displaced = next(e for e in three.history("fraud").all() if e.to_stage == "archived")
    assert displaced.reason == "replaced in production by fraud/3"


def test_database_refuses_two_production_versions(
    three: Registry, backing: EmbeddedRegistry
) -> None:
    promote(three, "fraud/1")
    promote(three, "fraud/2")
    v = tables.versions.c
    # Even a write that bypasses the service cannot create a second holder.
    with pytest.raises(sa.exc.IntegrityError), backing.db.engine.begin() as conn:
        conn.execute(
            sa.update(tables.versions)
            .where(v.version == 3)
            .values(stage="production", exclusive_stage="production")
        )


def test_transition_records_who_when_why(
    make_registry: Callable[..., EmbeddedRegistry], model_dir: Callable[..., Path]
) -> None:
    alice = make_registry("alice")
    bob = make_registry("bob")
    alice.register("fraud", model_dir("a"))
    moved = bob.transition("fraud/1", "staging", reason="ready for shadow traffic")
    event = next(e for e in alice.history("fraud").all() if e.kind == "stage_changed")
    assert (event.actor, event.from_stage, event.to_stage) == ("bob", "development", "staging")
    assert event.reason == "ready for shadow traffic"
    assert event.at == moved.stage_changed_at


def test_illegal_transition(three: Registry) -> None:
    with pytest.raises(errors.InvalidTransition) as info:
        three.transition("fraud/1", "production")
    assert "allowed from 'development': staging, archived" in info.value.message
    assert three.get("fraud/1").stage == "development"
    with pytest.raises(errors.InvalidTransition, match="already in stage"):
        three.transition("fraud/1", "development")


def test_unknown_stage_version_and_model(three: Registry) -> None:
    with pytest.raises(errors.NotFound, match="unknown stage 'prod'"):
        three.transition("fraud/1", "prod")
    with pytest.raises(errors.NotFound, match="has no version 9"):
        three.transition("fraud/9", "staging")
    with pytest.raises(errors.NotFound, match="'ghost' does not exist"):
        three.transition("ghost/1", "staging")
    assert [e.kind for e in three.history("fraud").all()].count("stage_changed") == 0


@pytest.mark.parametrize(
    "ref", ["fraud", "fraud/0", "fraud/x", "fraud@", "@prod", "a/b/c", "f@a@b"]
)
def test_malformed_references(three: Registry, ref: str) -> None:
    with pytest.raises(errors.InvalidReference):
        three.get(ref)


def test_references_resolve(three: Registry) -> None:
    promote(three, "fraud/2")
    three.transition("fraud/3", "staging")
    three.set_alias("fraud", "champion", 1)
    assert three.resolve("fraud/3").version == 3
    assert three.resolve("fraud@production").version == 2
    assert three.resolve("fraud@staging").version == 3
    assert three.resolve("fraud@champion").version == 1
    assert three.resolve("fraud@latest").version == 3
    with pytest.raises(errors.NotFound, match="no version in stage 'archived'"):
        three.resolve("fraud@archived")
    with pytest.raises(errors.NotFound, match="no alias or stage 'nope'"):
        three.resolve("fraud@nope")


def test_aliases_move_and_are_recorded(three: Registry) -> None:
    three.set_alias("fraud", "champion", 1)
    three.set_alias("fraud", "champion", 2)
    three.set_alias("fraud", "candidate", 3)
    assert three.get("fraud/2").aliases == ("champion",)
    assert three.get("fraud/1").aliases == ()
    three.delete_alias("fraud", "candidate")
    with pytest.raises(errors.NotFound):
        three.resolve("fraud@candidate")
    with pytest.raises(errors.NotFound, match="no alias 'candidate'"):
        three.delete_alias("fraud", "candidate")
    alias_events = [
        (e.kind, e.version, e.details.get("previous"))
        for e in three.history("fraud").all()
        if e.kind.startswith("alias")
    ]
    assert alias_events == [
        ("alias_set", 1, None),
        ("alias_set", 2, 1),
        ("alias_set", 3, None),
        ("alias_deleted", 3, None),
    ]


@pytest.mark.parametrize("alias", ["production", "latest", "Champion", "9lives", "has space", ""])
def test_bad_or_reserved_alias(three: Registry, alias: str) -> None:
    with pytest.raises(errors.InvalidName):
        three.set_alias("fraud", alias, 1)


def test_alias_to_unknown_version(three: Registry) -> None:
    with pytest.raises(errors.NotFound):
        three.set_alias("fraud", "champion", 7)
    with pytest.raises(errors.InvalidArgument):
        three.set_alias("fraud", "champion", 0)


def test_deleting_a_production_version_is_refused(three: Registry) -> None:
    promote(three, "fraud/1")
    with pytest.raises(errors.Conflict, match="move it out"):
        three.delete_version("fraud/1")
    three.set_alias("fraud", "champion", 2)
    three.delete_version("fraud/2")
    with pytest.raises(errors.NotFound):
        three.resolve("fraud@champion")


def test_history_pages(three: Registry) -> None:
    for _ in range(3):
        three.set_tags("fraud/1", {"n": "x"})
    first = three.history("fraud", page_size=2)
    assert len(first.items) == 2
    assert first.next_page_token is not None
    everything = list(first.all())
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    assert len(everything) == 1 + 3 + 3  # model created, three registrations, three tag sets
    with pytest.raises(errors.NotFound):
        three.history("ghost")


def test_custom_lifecycle(three: Registry) -> None:
    custom = Lifecycle.from_dict(
        {
            "stages": ["development", "shadow", "canary", "production", "staging", "archived"],
            "initial": "development",
            "transitions": {
                "development": ["shadow"],
                "shadow": ["canary", "archived"],
                "canary": ["production", "archived"],
                "production": ["archived"],
                "archived": ["development"],
            },
            "exclusive": {"production": "archived", "canary": "shadow"},
        }
    )
    three.set_lifecycle(custom)
    assert three.get_lifecycle() == custom
    three.transition("fraud/1", "shadow")
    three.transition("fraud/1", "canary")
    three.transition("fraud/2", "shadow")
    three.transition("fraud/2", "canary")
    assert three.get("fraud/1").stage == "shadow"  # displaced from the exclusive canary
    assert three.resolve("fraud@canary").version == 2
    assert three.resolve("fraud@shadow").version == 1
    with pytest.raises(errors.InvalidTransition):
        three.transition("fraud/3", "canary")


def test_lifecycle_change_cannot_strand_versions(three: Registry) -> None:
    three.transition("fraud/1", "staging")
    with pytest.raises(errors.Conflict, match="in stage 'staging'"):
        three.set_lifecycle(
            Lifecycle.from_dict({"stages": ["development", "production"], "transitions": {}})
        )
    three.transition("fraud/2", "staging")
    with pytest.raises(errors.Conflict, match="several versions in 'staging'"):
        three.set_lifecycle(
            Lifecycle.from_dict(
                {
                    "stages": ["development", "staging", "production", "archived"],
                    "exclusive": {"staging": "archived"},
                }
            )
        )
    assert three.get_lifecycle().exclusive == {"production": "archived"}


@pytest.mark.parametrize(
    "spec",
    [
        {"stages": []},
        {"stages": ["a", "a"]},
        {"stages": ["Bad Stage"]},
        {"stages": ["latest"]},
        {"stages": ["a"], "initial": "b"},
        {"stages": ["a", "b"], "transitions": {"a": ["c"]}},
        {"stages": ["a", "b"], "exclusive": {"a": "a"}},
        {"stages": ["a"], "colour": "blue"},
        "not an object",
    ],
)
def test_bad_lifecycles(spec: object) -> None:
    with pytest.raises(errors.InvalidArgument):
        Lifecycle.from_dict(spec)
