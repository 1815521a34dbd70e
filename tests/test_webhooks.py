"""Webhooks: registration, signed at-least-once delivery with retries, the delivery log,
test deliveries, and several dispatchers sharing one database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelreg import errors
from modelreg.embedded import EmbeddedRegistry
from modelreg.events import signing
from modelreg.events.delivery import Dispatcher
from modelreg.protocol import Registry
from receiver import Receiver

SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def drain(dispatcher: Dispatcher, until: Callable[[], bool], timeout: float = 30.0) -> None:
    """Run delivery rounds until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "deliveries did not complete in time"
        if not dispatcher.run_once():
            time.sleep(0.02)


def test_webhooks_are_registered_listed_and_deleted(reg: Registry) -> None:
    hook = reg.create_webhook(
        "https://hooks.example/modelreg", kinds=["stage_changed"], model="fraud"
    )
    assert hook.secret is not None
    assert hook.secret.startswith("whsec_")
    assert (hook.kinds, hook.model, hook.created_by) == (("stage_changed",), "fraud", "alice")
    listed = reg.list_webhooks().items
    assert [(w.id, w.url, w.secret) for w in listed] == [(hook.id, hook.url, None)]
    reg.delete_webhook(hook.id)
    assert reg.list_webhooks().items == []
    with pytest.raises(errors.NotFound):
        reg.delete_webhook(hook.id)
    with pytest.raises(errors.NotFound):
        reg.webhook_deliveries(hook.id)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "ftp://x/y"},
        {"url": "not a url"},
        {"url": "https://x/", "secret": "short"},
        {"url": "https://x/", "kinds": ["stage changed"]},
        {"url": "https://x/", "model": "bad name"},
    ],
)
def test_bad_webhooks_are_refused(reg: Registry, kwargs: dict[str, object]) -> None:
    with pytest.raises(errors.InvalidArgument):
        reg.create_webhook(**kwargs)  # type: ignore[arg-type]
    assert reg.list_webhooks().items == []


def test_a_test_delivery_is_signed_and_logged(reg: Registry, receiver: Receiver) -> None:
    hook = reg.create_webhook(receiver.url, secret=SECRET)
    result = reg.test_webhook(hook.id)
    assert (result.kind, result.status, result.response_status) == ("ping", "delivered", 204)
    (got,) = receiver.received
    assert got.signed_by(SECRET)
    assert got.payload["event"]["kind"] == "ping"
    assert got.headers[signing.DELIVERY_HEADER.lower()] == str(result.id)
    assert [d.id for d in reg.webhook_deliveries(hook.id)] == [result.id]


def test_a_test_delivery_to_a_dead_receiver_reports_the_failure(reg: Registry) -> None:
    dead = Receiver()
    dead.close()
    hook = reg.create_webhook(dead.url)
    result = reg.test_webhook(hook.id)
    assert result.status == "failed"
    assert result.response_status is None
    assert result.error is not None
    assert "Connect" in result.error


def test_a_receiver_that_fails_twice_gets_every_event_signed(
    backing: EmbeddedRegistry, model_dir: Callable[..., Path]
) -> None:
    receiver = Receiver(failures=2)
    try:
        hook = backing.create_webhook(receiver.url, secret=SECRET, model="fraud")
        backing.register("fraud", model_dir("a"))
        backing.transition("fraud/1", "staging")
        backing.register("other", model_dir("b"))  # filtered out by model
        dispatcher = Dispatcher(backing.db, retry_base=0.05, max_attempts=5)
        drain(dispatcher, lambda: len(receiver.delivered()) >= 3)
        delivered = receiver.delivered()
        assert all(r.signed_by(SECRET) for r in receiver.received)
        kinds = {r.payload["event"]["kind"] for r in delivered}
        assert kinds == {"model_created", "version_registered", "stage_changed"}
        assert len(receiver.received) == 5  # two refused attempts, three deliveries
        log = list(backing.webhook_deliveries(hook.id).all())
        assert {d.status for d in log} == {"delivered"}
        assert sum(d.attempts for d in log) == 5
        retried = [d for d in log if d.attempts > 1]
        assert retried
        assert all(d.response_status == 204 for d in log)
        # A retry re-sends the same body under the same delivery id.
        first = receiver.received[0]
        again = next(
            r
            for r in delivered
            if r.headers[signing.DELIVERY_HEADER.lower()]
            == first.headers[signing.DELIVERY_HEADER.lower()]
        )
        assert again.body == first.body
    finally:
        receiver.close()


def test_a_delivery_is_given_up_after_max_attempts(
    backing: EmbeddedRegistry, model_dir: Callable[..., Path]
) -> None:
    receiver = Receiver(failures=100)
    try:
        hook = backing.create_webhook(receiver.url, kinds=["version_registered"])
        backing.register("fraud", model_dir("a"))
        dispatcher = Dispatcher(backing.db, retry_base=0.01, max_attempts=3)
        dispatcher.fan_out()

        def settled() -> bool:
            return backing.webhook_deliveries(hook.id).items[0].status != "pending"

        drain(dispatcher, settled)
        (failed,) = backing.webhook_deliveries(hook.id).items
        assert (failed.status, failed.attempts, failed.response_status) == ("failed", 3, 500)
        assert failed.next_attempt_at is None
        assert len(receiver.received) == 3
    finally:
        receiver.close()


def test_a_new_webhook_starts_with_events_after_its_creation(
    backing: EmbeddedRegistry, model_dir: Callable[..., Path], receiver: Receiver
) -> None:
    backing.register("fraud", model_dir("a"))
    backing.create_webhook(receiver.url, secret=SECRET)
    backing.transition("fraud/1", "staging")
    dispatcher = Dispatcher(backing.db, retry_base=0.05)
    drain(dispatcher, lambda: len(receiver.delivered()) >= 1)
    dispatcher.run_once()
    assert [r.payload["event"]["kind"] for r in receiver.delivered()] == ["stage_changed"]


def test_dispatchers_in_several_processes_share_the_work_without_duplicates(
    backing: EmbeddedRegistry, model_dir: Callable[..., Path], receiver: Receiver
) -> None:
    hook = backing.create_webhook(receiver.url, secret=SECRET)
    for i in range(12):
        backing.register("fraud", model_dir(str(i)))
    expected = 13  # model_created and twelve version_registered
    # Each dispatcher has its own engine, as separate server processes would.
    others = [EmbeddedRegistry(backing.config) for _ in range(2)]
    try:
        dispatchers = [Dispatcher(r.db, retry_base=0.05) for r in [backing, *others]]
        threads = [
            threading.Thread(target=drain, args=(d, lambda: len(receiver.delivered()) >= expected))
            for d in dispatchers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for other in others:
            other.close()
    ids = [r.payload["event"]["id"] for r in receiver.delivered()]
    assert len(ids) == expected
    assert len(set(ids)) == expected  # claimed exactly once each
    assert len(list(backing.webhook_deliveries(hook.id).all())) == expected


def test_the_signature_check_detects_forgeries() -> None:
    body = b'{"event": {"kind": "stage_changed"}}'
    now = 1_800_000_000
    signature = signing.sign(SECRET, now, body)
    stamp = str(now)
    assert signing.verify(SECRET, body, stamp, signature, now=now + 10)
    assert not signing.verify(SECRET, body + b" ", stamp, signature, now=now)
    assert not signing.verify("another-secret-value", body, stamp, signature, now=now)
    assert not signing.verify(SECRET, body, str(now + 1), signature, now=now)
    assert not signing.verify(SECRET, body, stamp, signature, now=now + 301)  # replayed
    assert not signing.verify(SECRET, body, stamp, "sha256=" + "0" * 64, now=now)
    assert not signing.verify(SECRET, body, None, signature, now=now)
    assert not signing.verify(SECRET, body, "soon", signature, now=now)


def test_the_documented_signature_check_accepts_deliveries_and_detects_forgeries(
    reg: Registry, receiver: Receiver
) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "deployment.md").read_text()
    snippet = doc.split("**Checking a delivery.**", 1)[1].split("```python\n", 1)[1]
    namespace: dict[str, Any] = {}
    exec(snippet.split("```", 1)[0], namespace)
    documented = namespace["verify"]
    hook = reg.create_webhook(receiver.url, secret=SECRET)
    reg.test_webhook(hook.id)
    (got,) = receiver.received
    stamp = got.headers[signing.TIMESTAMP_HEADER.lower()]
    signature = got.headers[signing.SIGNATURE_HEADER.lower()]
    assert documented(SECRET, got.body, stamp, signature)
    forged_body = got.body.replace(b"ping", b"pong")
    assert not documented(SECRET, forged_body, stamp, signature)
    assert not documented("not-the-secret-at-all", got.body, stamp, signature)
    forged = signing.sign("attacker-secret-value", int(stamp), forged_body)
    assert not documented(SECRET, forged_body, stamp, forged)
    old = str(int(stamp) - 3600)
    assert not documented(SECRET, got.body, old, signing.sign(SECRET, int(old), got.body))
