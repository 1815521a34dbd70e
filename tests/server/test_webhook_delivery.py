"""Webhooks through real ``modelreg serve`` processes: the outbox survives a restart
between commit and delivery, and a failing receiver gets every event once it recovers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import modelreg
from receiver import Receiver

StartServers = Callable[..., list[str]]

SECRET = "restart-proof-secret"


def test_events_committed_before_a_restart_are_delivered_after_it(
    start_stop_servers: tuple[StartServers, Callable[[str], None]], tmp_path: Path
) -> None:
    start, stop = start_stop_servers
    home = tmp_path / "registry"
    env = {"MODELREG_HOME": str(home), "MODELREG_WEBHOOK_RETRY_BASE": "0.2"}
    receiver = Receiver(failures=2)
    try:
        # First server: changes commit, but nothing is delivered before it stops.
        (first,) = start({**env, "MODELREG_WEBHOOK_DELIVERY": "false"})
        with modelreg.connect(first, user="alice") as reg:
            hook = reg.create_webhook(receiver.url, secret=SECRET, model="fraud")
            model = tmp_path / "model.bin"
            model.write_bytes(b"weights")
            reg.register("fraud", model, metrics={"auc": 0.9})
            reg.transition("fraud/1", "staging", reason="candidate")
            expected = [e.id for e in reg.events(model="fraud").events]
        stop(first)
        assert receiver.received == []

        # Second server, two workers sharing the deliveries: every event arrives, signed.
        (second,) = start(env, workers=(2,))
        delivered = receiver.wait_for(len(expected))
        assert all(r.signed_by(SECRET) for r in receiver.received)
        assert sorted(r.payload["event"]["id"] for r in delivered) == expected
        assert [r.answered for r in receiver.received[:2]] == [500, 500]
        with modelreg.connect(second, user="alice") as reg:
            log = list(reg.webhook_deliveries(hook.id).all())
        assert sorted(d.event_id for d in log if d.event_id) == expected
        assert {d.status for d in log} == {"delivered"}
        assert sum(d.attempts for d in log) == len(receiver.received)
    finally:
        receiver.close()
