"""Where an endpoint's blocking work runs: on the event loop, or on a worker thread.

FastAPI runs a plain ``def`` endpoint on a worker thread, so that its blocking work
(database statements, file reads) leaves the event loop free for other requests. The hop
there and back costs two thread wake-ups, a large share of a small request: run on the
loop instead, get model answered 1.28-1.34x as many requests per second, create model
1.27x, a search page 1.20x and create version 1.17x (one client, one worker process, two
servers taking turns every half second).

While a worker serves a single request nothing else needs its loop. So a request runs its
blocking work inline when it is the only request in flight in its process, and on a
thread when another one is, where they overlap their waits as before. A request that
arrives while another runs inline waits for it, as it would for any CPU-bound request
under the GIL. Two kinds of work always take a thread:

- Work that waits on the network: a PostgreSQL database (every statement is a round
  trip) or a bucket. Inline, a busy worker would take requests one after another and sit
  idle through every round trip; threads overlap them. So inline work is only for
  registries that are entirely local, SQLite and a blob folder, where a request's work is
  CPU and disk and SQLite serializes writes anyway.
- Endpoints marked ``@blocking``: their work grows with the registry (verify, garbage
  collection, the audit chain) or waits on another system (a webhook test). Inline, it
  would stall every connection of the worker for as long, its health probes included.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from modelreg.artifacts.local import LocalArtifactStore
from modelreg.embedded import EmbeddedRegistry

P = ParamSpec("P")
R = TypeVar("R")

_BLOCKING = "__modelreg_blocking__"

# Requests of this process between the start and the end of their route handler. Only
# the event loop's thread changes it.
_in_flight = 0
# Whether the app serving the current request may run work inline (see ``enter``).
_inline: ContextVar[bool] = ContextVar("modelreg_inline", default=False)


def all_local(registry: EmbeddedRegistry) -> bool:
    """Whether the registry's work is local: SQLite and a blob folder."""
    return registry.db.dialect == "sqlite" and isinstance(registry.blobs, LocalArtifactStore)


def enter(inline: bool) -> Token[bool]:
    """A request's handler starts; ``inline`` if its app allows inline work."""
    global _in_flight
    _in_flight += 1
    return _inline.set(inline)


def leave(token: Token[bool]) -> None:
    """The request's handler has ended (``token`` from ``enter``)."""
    global _in_flight
    _in_flight -= 1
    _inline.reset(token)


def in_flight() -> int:
    """Requests of this process inside their route handlers now."""
    return _in_flight


async def run(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run blocking ``func``: inline when the current request may and is alone in its
    process, else on a worker thread."""
    if _in_flight == 1 and _inline.get():
        return func(*args, **kwargs)
    return await run_in_threadpool(func, *args, **kwargs)


def blocking(func: Callable[P, R]) -> Callable[P, R]:
    """Mark an endpoint whose work may take long: it always runs on a worker thread."""
    setattr(func, _BLOCKING, True)
    return func


def endpoint(func: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint FastAPI should call for ``func``: a coroutine that runs a plain
    function through ``run``. Coroutines and ``@blocking`` functions stay as they are
    (FastAPI runs the latter on its threadpool). The wrapper carries ``func``'s
    signature, from which FastAPI reads the parameters."""
    if inspect.iscoroutinefunction(func) or getattr(func, _BLOCKING, False):
        return func

    @functools.wraps(func)
    async def dispatched(*args: Any, **kwargs: Any) -> Any:
        return await run(func, *args, **kwargs)

    return dispatched
