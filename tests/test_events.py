"""Contract: the event feed (cursor, filters, long poll) and server-sent events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from inprocess import InProcessTransport
from modelreg import errors
from modelreg.embedded import EmbeddedRegistry
from modelreg.protocol import Registry
from modelreg.server import create_app


def scenario(reg: Registry, model_dir: Callable[..., Path]) -> None:
    """Every kind of model change, once."""
    reg.create_model("fraud", description="card fraud")
    reg.register("fraud", model_dir("a"), metrics={"auc": 0.9})
    reg.transition("fraud/1", "staging", reason="candidate")
    reg.set_alias("fraud", "champion", 1)
    reg.delete_alias("fraud", "champion")
    reg.set_gates({"production": {"rules": ["auc >= 0.5"]}}, model="fraud")
    reg.transition("fraud/1", "production")
    reg.create_environment("prod-eu")  # not a model event: stays out of the feed
    reg.set_gates({"production": {"rules": ["auc >= 0.5"]}})  # registry-wide: likewise
    reg.record_deployment("fraud@production", "prod-eu")
    reg.set_tags("fraud/1", {"validated": "yes"})
    reg.register("other", model_dir("b"))


EXPECTED = [
    ("model_created", "fraud", None, None),
    ("version_registered", "fraud", 1, "development"),
    ("stage_changed", "fraud", 1, "staging"),
    ("alias_set", "fraud", 1, None),
    ("alias_deleted", "fraud", 1, None),
    ("gates_set", "fraud", None, None),
    ("stage_changed", "fraud", 1, "production"),
    ("deployment_recorded", "fraud", 1, None),
    ("version_tags_set", "fraud", 1, None),
    ("model_created", "other", None, None),
    ("version_registered", "other", 1, "development"),
]


def test_a_scripted_scenario_emits_exactly_the_expected_events(
    reg: Registry, model_dir: Callable[..., Path]
) -> None:
    scenario(reg, model_dir)
    batch = reg.events()
    seen = [(e.kind, e.name, e.version, e.to_stage) for e in batch.events]
    assert seen == EXPECTED
    ids = [e.id for e in batch.events]
    assert ids == sorted(ids)
    assert batch.cursor >= ids[-1]
    deployed = batch.events[7]
    assert deployed.details["environment"] == "prod-eu"
    assert deployed.details["status"] == "deployed"
    assert deployed.actor == "alice"
    # Nothing new after the cursor.
    assert reg.events(after=batch.cursor).events == []


def test_the_cursor_pages_through_the_feed(reg: Registry, model_dir: Callable[..., Path]) -> None:
    scenario(reg, model_dir)
    seen: list[str] = []
    cursor = 0
    while True:
        batch = reg.events(after=cursor, limit=4)
        if not batch.events:
            break
        assert len(batch.events) <= 4
        seen.extend(e.kind for e in batch.events)
        cursor = batch.cursor
    assert seen == [kind for kind, *_ in EXPECTED]


def test_filters_by_model_and_kind_move_the_cursor_past_what_they_skip(
    reg: Registry, model_dir: Callable[..., Path]
) -> None:
    scenario(reg, model_dir)
    other = reg.events(model="other")
    assert [e.kind for e in other.events] == ["model_created", "version_registered"]
    moves = reg.events(kinds=["stage_changed", "deployment_recorded"], model="fraud")
    assert [(e.kind, e.to_stage) for e in moves.events] == [
        ("stage_changed", "staging"),
        ("stage_changed", "production"),
        ("deployment_recorded", None),
    ]
    everything = reg.events()
    assert moves.cursor == everything.cursor  # no need to re-read the skipped events
    assert reg.events(model="nobody").events == []


def test_a_long_poll_answers_when_an_event_arrives(
    reg: Registry, make_registry: Callable[..., Registry], model_dir: Callable[..., Path]
) -> None:
    reg.register("fraud", model_dir("a"))
    cursor = reg.events().cursor
    writer = make_registry("bob")
    timer = threading.Timer(0.5, lambda: writer.transition("fraud/1", "staging"))
    timer.start()
    started = time.monotonic()
    batch = reg.events(after=cursor, wait=20)
    timer.join()
    assert [(e.kind, e.actor) for e in batch.events] == [("stage_changed", "bob")]
    assert time.monotonic() - started < 15


def test_a_long_poll_without_events_returns_empty_after_waiting(reg: Registry) -> None:
    started = time.monotonic()
    batch = reg.events(wait=0.5)
    assert batch.events == []
    assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize(
    "kwargs",
    [{"after": -1}, {"wait": 61}, {"wait": -1}, {"limit": 0}, {"limit": 1001}, {"model": "a b"}],
)
def test_bad_feed_arguments_are_refused(reg: Registry, kwargs: dict[str, object]) -> None:
    with pytest.raises(errors.InvalidArgument):
        reg.events(**kwargs)  # type: ignore[arg-type]


def test_server_sent_events_stream_the_feed_and_resume(
    backing: EmbeddedRegistry, model_dir: Callable[..., Path]
) -> None:
    scenario(backing, model_dir)
    app = create_app(backing.config)
    try:
        with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as client:
            response = client.get("/api/v1/events/stream", params={"wait": 0.3})
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            messages = _parse_sse(response.text)
            assert [m["event"] for m in messages] == [kind for kind, *_ in EXPECTED]
            ids = [int(m["id"]) for m in messages]
            assert [json.loads(m["data"])["id"] for m in messages] == ids
            resumed = client.get(
                "/api/v1/events/stream",
                params={"wait": 0.3, "model": "fraud"},
                headers={"Last-Event-ID": str(ids[5])},
            )
            assert [m["event"] for m in _parse_sse(resumed.text)] == [
                "stage_changed",
                "deployment_recorded",
                "version_tags_set",
            ]
            bad = client.get("/api/v1/events/stream", headers={"Last-Event-ID": "x"})
            assert bad.status_code == 400
            assert bad.json()["error"]["code"] == "INVALID_ARGUMENT"
    finally:
        app.state.registry.close()


def _parse_sse(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            messages.append(fields)
    return messages
