"""Processes that crash mid-registration, and processes that register at the same time."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import modelreg
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import AlreadyExists
from modelreg.protocol import Registry

pytestmark = pytest.mark.slow


def _register_many(uri: str, artifacts: str, folder: str, count: int, worker: int) -> list[int]:
    reg = modelreg.connect(uri, artifacts=artifacts, user=f"worker-{worker}")
    try:
        return [
            reg.register("shared", folder, metrics={"worker": worker, "i": i}).version
            for i in range(count)
        ]
    finally:
        reg.close()


def test_concurrent_processes_get_dense_unique_numbers(
    registry_uri: str, tmp_path: Path, backing: EmbeddedRegistry
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(os.urandom(256 * 1024))
    workers, each = 4, 8
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = pool.starmap(
            _register_many,
            [(registry_uri, str(tmp_path / "blobs"), str(folder), each, w) for w in range(workers)],
        )
    numbers = sorted(n for chunk in results for n in chunk)
    assert numbers == list(range(1, workers * each + 1))
    reg = modelreg.connect(registry_uri, artifacts=tmp_path / "blobs")
    try:
        stored = [v.version for v in reg.list_versions("shared").all()]
        assert sorted(stored) == numbers
        registrations = [e for e in reg.history("shared").all() if e.kind == "version_registered"]
        assert len(registrations) == workers * each
        assert reg.verify().ok
    finally:
        reg.close()


CRASH = textwrap.dedent(
    """
    import os, sys
    import modelreg
    from modelreg.service import registry

    def crash(*args, **kwargs):
        os._exit(17)  # the process dies inside the transaction, after the version row

    registry.record = crash
    reg = modelreg.connect(sys.argv[1], artifacts=sys.argv[2])
    reg.register("fraud", sys.argv[3])
    """
)


def test_crash_between_blob_write_and_commit_leaves_no_version(
    reg: Registry, registry_uri: str, tmp_path: Path, backing: EmbeddedRegistry
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights that were stored")
    reg.create_model("fraud")
    child = subprocess.run(
        [sys.executable, "-c", CRASH, registry_uri, str(tmp_path / "blobs"), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 17, child.stderr
    assert reg.search_versions().items == []
    assert len(list(backing.blobs.iter_blobs())) == 1  # bytes are there, unreferenced
    assert reg.verify().ok
    assert reg.gc("0s").deleted_blobs == 1
    assert reg.register("fraud", folder).version == 1
    assert reg.verify().ok


def _promote(uri: str, artifacts: str, version: int) -> str:
    reg = modelreg.connect(uri, artifacts=artifacts, user=f"promoter-{version}")
    try:
        reg.transition(f"contested/{version}", "production", reason="race")
        return "ok"
    finally:
        reg.close()


def test_concurrent_promotions_leave_one_production_version(
    reg: Registry, registry_uri: str, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    count = 6
    for number in range(1, count + 1):
        reg.register("contested", folder)
        reg.transition(f"contested/{number}", "staging")
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        outcomes = pool.starmap(
            _promote, [(registry_uri, str(tmp_path / "blobs"), n) for n in range(1, count + 1)]
        )
    assert outcomes == ["ok"] * count
    stages = [v.stage for v in reg.list_versions("contested").all()]
    assert stages.count("production") == 1
    assert stages.count("archived") == count - 1
    winner = reg.resolve("contested@production")
    last_promotion = [e for e in reg.history("contested").all() if e.to_stage == "production"][-1]
    assert last_promotion.version == winner.version


def test_concurrent_creations_of_one_name_give_one_model(
    registry_uri: str, tmp_path: Path, backing: EmbeddedRegistry
) -> None:
    # The losers of the race are told the name is taken (ALREADY_EXISTS), not that
    # something conflicted: an insert that finds the name waits for the winner's commit
    # and then inserts nothing.
    workers = 6
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []

    def create(worker: int) -> None:
        reg = modelreg.connect(registry_uri, artifacts=tmp_path / "blobs", user=f"w{worker}")
        try:
            barrier.wait()
            try:
                reg.create_model("contested", description=f"by w{worker}")
                outcomes.append("created")
            except AlreadyExists:
                outcomes.append("exists")
        finally:
            reg.close()

    threads = [threading.Thread(target=create, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["created"] + ["exists"] * (workers - 1)
    created = [e for e in backing.history("contested").all() if e.kind == "model_created"]
    assert len(created) == 1
    assert backing.get_model("contested").description == f"by {created[0].actor}"
