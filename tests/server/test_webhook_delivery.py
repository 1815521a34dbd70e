"""Events through real ``modelreg serve`` processes: the webhook outbox survives a restart
between commit and delivery, a failing receiver gets every event once it recovers, and
open event streams do not keep a server from stopping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

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
            # The receiver has the last request before the worker that sent it records
            # the answer: wait for that record rather than race it.
            deadline = time.monotonic() + 30
            while True:
                log = list(reg.webhook_deliveries(hook.id).all())
                if all(d.status != "pending" for d in log) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert sorted(d.event_id for d in log if d.event_id) == expected
        assert {d.status for d in log} == {"delivered"}
        assert sum(d.attempts for d in log) == len(receiver.received)
    finally:
        receiver.close()


def test_open_event_streams_and_long_polls_do_not_hold_up_a_stop(
    start_stop_servers: tuple[StartServers, Callable[[str], None]], tmp_path: Path
) -> None:
    start, stop = start_stop_servers
    (url,) = start({"MODELREG_HOME": str(tmp_path / "registry")}, workers=(2,))
    ended: list[str] = []

    def listen(path: str) -> None:
        with httpx.stream("GET", url + path, timeout=120) as response:
            assert response.status_code == 200
            for _ in response.iter_bytes():
                pass
        ended.append(path)

    paths = ["/api/v1/events/stream?wait=600", "/api/v1/events?after=1000000&wait=60"]
    listeners = [threading.Thread(target=listen, args=(path,)) for path in paths]
    for listener in listeners:
        listener.start()
    time.sleep(1.0)  # both requests are waiting in the server
    started = time.monotonic()
    stop(url)  # fails the test unless the server stops cleanly
    for listener in listeners:
        listener.join(timeout=30)
    assert time.monotonic() - started < 15
    assert sorted(ended) == sorted(paths)
