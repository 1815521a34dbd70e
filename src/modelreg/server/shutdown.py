"""Knowing that the server is stopping, so that long-lived responses end first.

uvicorn waits for every open response before it stops, and an event stream or a long
poll stays open for minutes. The server chains a handler in front of uvicorn's for
SIGTERM and SIGINT: it sets ``stopping``, which those responses check between polls, and
passes the signal on unchanged.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shutdown:
    """``stopping`` is set once the process has been asked to stop."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Chain in front of the current handlers (only the main thread may do this)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):
                self._previous[sig] = previous
                signal.signal(sig, self._handler(previous))

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handler(
        self, previous: Callable[[int, FrameType | None], Any]
    ) -> Callable[[int, FrameType | None], None]:
        def handle(signum: int, frame: FrameType | None) -> None:
            self.stopping.set()
            previous(signum, frame)

        return handle
