"""Where endpoints run: inline on the event loop when their request is alone in the
process and the registry is local, on a worker thread otherwise."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from modelreg.embedded import EmbeddedRegistry
from modelreg.server import dispatch, routes_models, routes_ops

if TYPE_CHECKING:  # mypy names this folder's modules http.*; pytest imports them flat
    from http.httpkit import make_app
else:
    from httpkit import make_app


def _thread_of_run(*, inline: bool, others: int = 0) -> tuple[int, int]:
    """(the loop's thread, the thread ``dispatch.run`` ran a function on)."""

    async def main() -> tuple[int, int]:
        tokens = [dispatch.enter(inline) for _ in range(others)]
        token = dispatch.enter(inline)
        try:
            ran = await dispatch.run(threading.get_ident)
        finally:
            dispatch.leave(token)
            for other in reversed(tokens):
                dispatch.leave(other)
        return threading.get_ident(), ran

    return asyncio.run(main())


def test_a_request_alone_in_its_process_runs_inline() -> None:
    loop, ran = _thread_of_run(inline=True)
    assert ran == loop
    assert dispatch.in_flight() == 0


def test_with_another_request_in_flight_work_goes_to_a_thread() -> None:
    loop, ran = _thread_of_run(inline=True, others=1)
    assert ran != loop


def test_an_app_that_does_not_allow_inline_work_uses_threads() -> None:
    loop, ran = _thread_of_run(inline=False)
    assert ran != loop


def test_outside_any_request_work_goes_to_a_thread() -> None:
    async def main() -> bool:
        return await dispatch.run(threading.get_ident) == threading.get_ident()

    assert asyncio.run(main()) is False


def test_an_error_leaves_the_count_as_it_was() -> None:
    def fail() -> None:
        raise ValueError("boom")

    async def main() -> None:
        token = dispatch.enter(True)
        try:
            with pytest.raises(ValueError, match="boom"):
                await dispatch.run(fail)
        finally:
            dispatch.leave(token)

    asyncio.run(main())
    assert dispatch.in_flight() == 0


def test_plain_endpoints_become_coroutines_with_their_signature() -> None:
    wrapped = dispatch.endpoint(routes_models.get_model)
    assert inspect.iscoroutinefunction(wrapped)
    assert inspect.signature(wrapped) == inspect.signature(routes_models.get_model)
    assert wrapped.__name__ == "get_model"


def test_coroutines_and_blocking_endpoints_stay_as_they_are() -> None:
    async def already() -> None:
        return None

    assert dispatch.endpoint(already) is already
    assert dispatch.endpoint(routes_ops.verify) is routes_ops.verify
    assert dispatch.endpoint(routes_models.delete_model) is routes_models.delete_model


def test_only_a_local_registry_runs_work_inline(
    backing: EmbeddedRegistry, backend: str, tmp_path: Path
) -> None:
    assert dispatch.all_local(backing) is (backend == "sqlite")


def test_a_registry_on_a_bucket_uses_threads(s3_backing: EmbeddedRegistry) -> None:
    assert dispatch.all_local(s3_backing) is False


def _record_threads(app: FastAPI, method: str, seen: list[int]) -> None:
    """Make the app's service note the thread each call of ``method`` runs on."""
    service = app.state.registry.service
    original: Callable[..., Any] = getattr(service, method)

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.get_ident())
        return original(*args, **kwargs)

    setattr(service, method, recording)


def test_the_server_runs_a_lone_request_inline_and_others_on_threads(tmp_path: Path) -> None:
    app = make_app(tmp_path / "server")
    assert app.state.inline_work is True
    read: list[int] = []
    verified: list[int] = []
    _record_threads(app, "get_model", read)
    _record_threads(app, "verify", verified)
    data = b"x" * 4096
    sha = hashlib.sha256(data).hexdigest()
    resume = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield data[:1000]
        await resume.wait()
        yield data[1000:]

    async def calls() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.post("/api/v1/models", json={"name": "fraud"})).status_code == 201
            assert (await client.get("/api/v1/models/fraud")).status_code == 200
            assert (await client.post("/api/v1/verify")).status_code == 200
            # An upload held half-way stays in flight: a read meanwhile takes a thread.
            upload = asyncio.ensure_future(
                client.put(
                    f"/api/v1/blobs/{sha}",
                    content=slow_body(),
                    headers={"content-length": str(len(data))},
                )
            )
            while dispatch.in_flight() == 0:
                await asyncio.sleep(0.01)
            assert (await client.get("/api/v1/models/fraud")).status_code == 200
            resume.set()
            assert (await upload).status_code == 201
        return threading.get_ident()

    try:
        loop = anyio.run(calls)
    finally:
        app.state.registry.close()
    assert len(read) == 2
    assert read[0] == loop
    assert read[1] != loop
    assert len(verified) == 1
    assert verified[0] != loop
    assert dispatch.in_flight() == 0
