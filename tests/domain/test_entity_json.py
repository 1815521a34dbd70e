"""Entities the server hands to orjson as they are must serialize as their to_dict()."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from modelreg.domain.entities import Model


def test_a_model_serializes_natively_as_its_to_dict() -> None:
    at = datetime(2026, 11, 26, 22, 58, 30, 123456, tzinfo=timezone.utc)
    model = Model(
        name="fraud",
        description="scores card payments",
        tags={"team": "risk", "ünïcode": "✓"},
        created_at=at,
        created_by="alice",
        updated_at=at.replace(microsecond=0),
        latest_version=7,
        stage_holders={"production": 5, "staging": 7},
        aliases={"champion": 5},
    )
    native = orjson.loads(orjson.dumps(model))
    assert native == model.to_dict()
    assert list(native) == list(model.to_dict())  # same keys in the same order
    empty = Model("m", "", {}, at, "bob", at, None)
    assert orjson.loads(orjson.dumps(empty)) == empty.to_dict()
