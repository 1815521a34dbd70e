"""Contract: registered models (runs on every backend)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg import errors
from modelreg.protocol import Registry


def test_create_get_update_delete(reg: Registry) -> None:
    created = reg.create_model("fraud", description="card fraud", tags={"team": "risk"})
    assert created.name == "fraud"
    assert created.tags == {"team": "risk"}
    assert created.created_by == "alice"
    assert created.latest_version is None

    updated = reg.update_model("fraud", description="card fraud v2")
    assert updated.description == "card fraud v2"
    assert updated.updated_at >= created.updated_at
    assert reg.get_model("fraud").description == "card fraud v2"

    reg.delete_model("fraud")
    with pytest.raises(errors.NotFound, match="'fraud' does not exist"):
        reg.get_model("fraud")


def test_duplicate_model_is_refused(reg: Registry) -> None:
    reg.create_model("fraud")
    with pytest.raises(errors.AlreadyExists) as info:
        reg.create_model("fraud")
    assert info.value.code == "ALREADY_EXISTS"


@pytest.mark.parametrize(
    "name",
    ["", "-leading-dash", "has space", "a/b", "a@b", "x" * 129, "ünïcode", "semi;colon", ".hidden"],
)
def test_bad_model_names(reg: Registry, name: str) -> None:
    with pytest.raises(errors.InvalidName) as info:
        reg.create_model(name)
    assert info.value.code == "INVALID_NAME"
    assert "letters, digits" in info.value.message
    assert reg.search_models().items == []


def test_model_tags_set_and_delete(reg: Registry) -> None:
    reg.create_model("fraud", tags={"team": "risk"})
    reg.set_tags("fraud", {"team": "payments", "tier": "1"})
    assert reg.get_model("fraud").tags == {"team": "payments", "tier": "1"}
    reg.delete_tag("fraud", "tier")
    assert reg.get_model("fraud").tags == {"team": "payments"}
    with pytest.raises(errors.NotFound):
        reg.delete_tag("fraud", "tier")


def test_bad_tags_are_refused_whole(reg: Registry) -> None:
    reg.create_model("fraud", tags={"team": "risk"})
    with pytest.raises(errors.InvalidArgument):
        reg.set_tags("fraud", {"ok": "yes", "bad": 3})  # type: ignore[dict-item]
    with pytest.raises(errors.InvalidName):
        reg.set_tags("fraud", {" padded": "x"})
    assert reg.get_model("fraud").tags == {"team": "risk"}


def test_update_unknown_model(reg: Registry) -> None:
    with pytest.raises(errors.NotFound):
        reg.update_model("ghost", description="x")


def test_delete_model_in_production_needs_force(
    reg: Registry, model_dir: Callable[..., Path]
) -> None:
    mv = reg.register("fraud", model_dir("a"))
    reg.transition(mv.ref, "staging")
    reg.transition(mv.ref, "production")
    with pytest.raises(errors.Conflict, match="fraud/1 is in production"):
        reg.delete_model("fraud")
    assert reg.get("fraud/1").stage == "production"
    reg.delete_model("fraud", force=True)
    with pytest.raises(errors.NotFound):
        reg.get("fraud/1")
    kinds = [e.kind for e in reg.history("fraud").all()]
    assert kinds[-1] == "model_deleted"


def test_model_summary(reg: Registry, model_dir: Callable[..., Path]) -> None:
    for seed in "abc":
        reg.register("fraud", model_dir(seed))
    reg.transition("fraud/2", "staging")
    reg.transition("fraud/2", "production")
    reg.set_alias("fraud", "champion", 3)
    model = reg.get_model("fraud")
    assert model.latest_version == 3
    assert model.stage_holders == {"production": 2}
    assert model.aliases == {"champion": 3}
    assert model.to_dict()["stage_holders"] == {"production": 2}


def test_latest_version_follows_deletions(reg: Registry, model_dir: Callable[..., Path]) -> None:
    reg.create_model("empty")
    for seed in "abc":
        reg.register("fraud", model_dir(seed))
    reg.delete_version("fraud/3")
    assert reg.get_model("fraud").latest_version == 2
    assert reg.get_model("empty").latest_version is None
    # A search page loads its models in one query: each gets its own latest version.
    found = {m.name: m.latest_version for m in reg.search_models("name LIKE '%'").items}
    assert found == {"empty": None, "fraud": 2}
