"""Contract: pull verifies every byte, verify finds damage, gc collects only garbage."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import modelreg
from modelreg import errors
from modelreg.artifacts import files
from modelreg.artifacts.local import LocalArtifactStore
from modelreg.embedded import EmbeddedRegistry
from modelreg.protocol import Registry


def blob_path(reg: EmbeddedRegistry, sha256: str) -> Path:
    assert isinstance(reg.blobs, LocalArtifactStore)
    return reg.blobs.path_of(sha256)


def test_pull_round_trip(reg: Registry, model_dir: Callable[..., Path], tmp_path: Path) -> None:
    files = {"model.pkl": os.urandom(3 * 1024 * 1024 + 7), "meta/a.json": b"{}", "e": b""}
    reg.register("fraud", model_dir(files=files))
    reg.transition("fraud/1", "staging")
    dest = tmp_path / "out"
    mv = reg.pull("fraud@staging", dest)
    assert mv.ref == "fraud/1"
    for rel, data in files.items():
        assert (dest / rel).read_bytes() == data
    assert sorted(p.name for p in dest.iterdir()) == ["e", "meta", "model.pkl"]


@pytest.fixture
def direct_from_1mib(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, bool]]:
    """Pulls write files of 1 MiB and more directly; each file created: (name, direct
    asked, direct granted)."""
    monkeypatch.setattr(files, "DIRECT_FROM", 1024 * 1024)
    created: list[tuple[str, bool, bool]] = []
    real_create = files.create_new

    def create_new(path: Path, *, direct: bool) -> tuple[io.FileIO, bool]:
        out, granted = real_create(path, direct=direct)
        created.append((path.name, direct, granted))
        return out, granted

    monkeypatch.setattr(files, "create_new", create_new)
    return created


@pytest.mark.parametrize("size", [1024 * 1024, 3 * 1024 * 1024 + 7])
def test_large_files_are_pulled_around_the_page_cache_and_flushed(
    reg: Registry,
    model_dir: Callable[..., Path],
    tmp_path: Path,
    direct_from_1mib: list[tuple[str, bool, bool]],
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    files_ = {"weights.bin": os.urandom(size), "config.json": b"{}"}
    reg.register("fraud", model_dir(files=files_))
    flushed: list[int] = []
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        flushed.append(fd)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    direct_from_1mib.clear()  # only the pull's files
    flushed.clear()
    reg.pull("fraud/1", tmp_path / "out")
    for rel, data in files_.items():
        assert (tmp_path / "out" / rel).read_bytes() == data
    asked = {name: (wanted, granted) for name, wanted, granted in direct_from_1mib}
    assert asked["config.json"] == (False, False)
    wanted, granted = asked["weights.bin"]
    assert wanted
    # Flushed once when written directly (the tail went through the cache); a buffered
    # small file is not.
    assert len(flushed) == (1 if granted else 0)


@pytest.mark.usefixtures("no_direct_io")
def test_pulls_fall_back_to_the_page_cache_where_direct_io_is_refused(
    reg: Registry,
    model_dir: Callable[..., Path],
    tmp_path: Path,
    direct_from_1mib: list[tuple[str, bool, bool]],
) -> None:
    data = os.urandom(2 * 1024 * 1024 + 1)
    reg.register("fraud", model_dir(files={"weights.bin": data}))
    direct_from_1mib.clear()
    reg.pull("fraud/1", tmp_path / "out")
    assert (tmp_path / "out" / "weights.bin").read_bytes() == data
    assert direct_from_1mib == [("weights.bin", True, False)]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["weights.bin"]


def test_direct_io_can_be_turned_off(
    tmp_path: Path,
    model_dir: Callable[..., Path],
    direct_from_1mib: list[tuple[str, bool, bool]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELREG_DIRECT_IO", "false")
    data = os.urandom(2 * 1024 * 1024)
    reg = modelreg.connect(home=tmp_path / "home")
    assert isinstance(reg, EmbeddedRegistry)
    with reg:
        assert isinstance(reg.blobs, LocalArtifactStore)
        assert not reg.blobs.direct_io  # nor for the blobs the store writes
        reg.register("fraud", model_dir(files={"weights.bin": data}))
        direct_from_1mib.clear()
        reg.pull("fraud/1", tmp_path / "out")
    assert direct_from_1mib == [("weights.bin", False, False)]
    assert (tmp_path / "out" / "weights.bin").read_bytes() == data


def test_pull_detects_corruption_and_leaves_dest_alone(
    reg: Registry, model_dir: Callable[..., Path], tmp_path: Path, backing: EmbeddedRegistry
) -> None:
    mv = reg.register("fraud", model_dir(files={"a.bin": b"good bytes", "b.bin": b"other"}))
    damaged = next(f for f in mv.files if f.path == "b.bin")
    path = blob_path(backing, damaged.sha256)
    path.write_bytes(b"evil!")  # same length, different bytes
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(errors.IntegrityError, match=r"'b\.bin' is corrupt") as info:
        reg.pull("fraud/1", dest)
    assert info.value.code == "INTEGRITY_ERROR"
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]


def test_pull_detects_truncation_and_missing_blob(
    reg: Registry, model_dir: Callable[..., Path], tmp_path: Path, backing: EmbeddedRegistry
) -> None:
    mv = reg.register("fraud", model_dir(files={"a.bin": b"0123456789"}))
    path = blob_path(backing, mv.files[0].sha256)
    path.write_bytes(b"01234")
    with pytest.raises(errors.IntegrityError, match="read 5 bytes"):
        reg.pull("fraud/1", tmp_path / "out")
    path.unlink()
    with pytest.raises(errors.IntegrityError, match="missing"):
        reg.pull("fraud/1", tmp_path / "out")


def test_verify_reports_missing_and_corrupt(
    reg: Registry, model_dir: Callable[..., Path], backing: EmbeddedRegistry
) -> None:
    reg.register("fraud", model_dir(files={"a.bin": b"aaa", "b.bin": b"bbb", "c.bin": b"ccc"}))
    reg.register("other", model_dir(files={"same.bin": b"bbb"}))
    report = reg.verify()
    assert report.ok
    assert report.checked_blobs == 3
    assert report.checked_bytes == 9
    by_path = {f.path: f.sha256 for f in reg.get("fraud/1").files}
    blob_path(backing, by_path["a.bin"]).unlink()
    blob_path(backing, by_path["b.bin"]).write_bytes(b"bxb")
    report = reg.verify()
    assert not report.ok
    problems = {(p.sha256, p.problem): p for p in report.problems}
    assert set(problems) == {(by_path["a.bin"], "missing"), (by_path["b.bin"], "corrupt")}
    assert problems[(by_path["b.bin"], "corrupt")].referenced_by == ("fraud/1", "other/1")
    assert report.to_dict()["ok"] is False


def test_gc_collects_only_old_unreferenced_blobs(
    reg: Registry, model_dir: Callable[..., Path], backing: EmbeddedRegistry
) -> None:
    keep = reg.register("fraud", model_dir(files={"keep.bin": b"keep"}))
    gone = reg.register("fraud", model_dir(files={"gone.bin": b"gone"}))
    reg.delete_version(gone.ref)
    assert reg.gc("1h").deleted_blobs == 0  # too recent: could belong to an upload in flight
    old = time.time() - 7200
    for sha in (keep.files[0].sha256, gone.files[0].sha256):
        os.utime(blob_path(backing, sha), (old, old))
    dry = reg.gc("1h", dry_run=True)
    assert (dry.deleted_blobs, dry.dry_run) == (1, True)
    assert blob_path(backing, gone.files[0].sha256).exists()
    report = reg.gc("1h")
    assert (report.deleted_blobs, report.deleted_bytes) == (1, 4)
    assert not blob_path(backing, gone.files[0].sha256).exists()
    assert blob_path(backing, keep.files[0].sha256).exists()
    assert reg.verify().ok


def test_reupload_refreshes_an_old_blob_so_gc_spares_it(
    reg: Registry, model_dir: Callable[..., Path], backing: EmbeddedRegistry
) -> None:
    mv = reg.register("fraud", model_dir(files={"w.bin": b"weights"}))
    reg.delete_version(mv.ref)
    path = blob_path(backing, mv.files[0].sha256)
    old = time.time() - 7200
    os.utime(path, (old, old))
    reg.register("fraud", model_dir(files={"w.bin": b"weights"}))
    assert reg.gc("1h").deleted_blobs == 0
    assert path.exists()


@pytest.mark.parametrize("grace", ["-1h", "soon", "h", ""])
def test_bad_grace(reg: Registry, grace: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        reg.gc(grace)


def test_put_with_wrong_expectation_stores_nothing(
    reg: Registry, backing: EmbeddedRegistry
) -> None:
    import io

    with pytest.raises(errors.IntegrityError, match="expected 4"):
        backing.blobs.put(io.BytesIO(b"abc"), expected_size=4)
    with pytest.raises(errors.IntegrityError, match="expected"):
        backing.blobs.put(io.BytesIO(b"abc"), expected_sha256="0" * 64)
    assert list(backing.blobs.iter_blobs()) == []
    assert isinstance(backing.blobs, LocalArtifactStore)
    assert list((backing.blobs.root / "partial").iterdir()) == []


def test_pull_detects_a_blob_that_grew(
    reg: Registry, model_dir: Callable[..., Path], tmp_path: Path, backing: EmbeddedRegistry
) -> None:
    mv = reg.register("fraud", model_dir(files={"a.bin": b"0123456789"}))
    path = blob_path(backing, mv.files[0].sha256)
    path.write_bytes(b"0123456789" * 1000)
    with pytest.raises(errors.IntegrityError, match="more than the recorded 10 bytes"):
        reg.pull("fraud/1", tmp_path / "out")
    assert not (tmp_path / "out" / "a.bin").exists()


def test_pull_of_many_files_in_parallel(
    reg: Registry, model_dir: Callable[..., Path], tmp_path: Path
) -> None:
    files = {f"shard-{i:02d}/weights.bin": os.urandom(1000 + i * 7919) for i in range(24)}
    reg.register("big", model_dir(files=files))
    reg.pull("big/1", tmp_path / "out")
    for rel, data in files.items():
        assert (tmp_path / "out" / rel).read_bytes() == data
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert leftovers == []
