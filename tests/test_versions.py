"""Contract: registering versions, manifests, metadata and lineage."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelreg import errors
from modelreg.domain.manifest import FileEntry, Manifest
from modelreg.embedded import EmbeddedRegistry
from modelreg.protocol import Registry

LINEAGE = {
    "run_id": "run-42",
    "run_uri": "runs:/run-42",
    "code_repo": "git@example.com:risk/fraud.git",
    "code_commit": "0123abcd",
    "dataset": "transactions",
    "dataset_version": "2026-11",
    "dataset_digest": "sha256:" + "0" * 64,
    "framework": "sklearn",
}


def test_register_directory_records_manifest(reg: Registry, model_dir: Callable[..., Path]) -> None:
    folder = model_dir(files={"model.pkl": b"abc", "sub/dir/x.json": b"{}", "empty.txt": b""})
    mv = reg.register("fraud", folder)
    assert (mv.name, mv.version, mv.stage) == ("fraud", 1, "development")
    assert [f.path for f in mv.files] == ["empty.txt", "model.pkl", "sub/dir/x.json"]
    by_path = {f.path: f for f in mv.files}
    assert by_path["model.pkl"].sha256 == hashlib.sha256(b"abc").hexdigest()
    assert by_path["model.pkl"].size == 3
    assert by_path["empty.txt"].size == 0
    assert mv.manifest_digest == Manifest.build(list(mv.files)).digest
    assert mv.manifest_digest.startswith("sha256:")
    assert mv.size == 5
    assert mv.created_by == "alice"


def test_register_single_file(reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx bytes")
    mv = reg.register("fraud", path)
    assert [(f.path, f.size) for f in mv.files] == [("model.onnx", 10)]


def test_versions_number_one_two_three(reg: Registry, model_dir: Callable[..., Path]) -> None:
    numbers = [reg.register("fraud", model_dir(str(i))).version for i in range(3)]
    assert numbers == [1, 2, 3]
    assert reg.register("other", model_dir("x")).version == 1


def test_deleted_version_number_is_not_reused(
    reg: Registry, model_dir: Callable[..., Path]
) -> None:
    reg.register("fraud", model_dir("a"))
    reg.register("fraud", model_dir("b"))
    reg.delete_version("fraud/2")
    with pytest.raises(errors.NotFound):
        reg.get("fraud/2")
    assert reg.register("fraud", model_dir("c")).version == 3
    assert reg.get("fraud@latest").version == 3


def test_metadata_and_lineage_round_trip(reg: Registry, model_dir: Callable[..., Path]) -> None:
    parent = reg.register("base", model_dir("base"))
    mv = reg.register(
        "fraud",
        model_dir("a"),
        metrics={"auc": 0.93, "latency_ms": 12},
        params={"max_depth": 6, "lr": 0.1, "criterion": "gini", "balanced": True, "seed": None},
        lineage={**LINEAGE, "parents": [parent.ref]},
        tags={"owner": "ana"},
        description="first",
    )
    again = reg.get("fraud/1")
    assert again == mv
    # The registration's answer is built without reading the version back: same JSON too.
    assert again.to_dict() == mv.to_dict()
    assert again.metrics == {"auc": 0.93, "latency_ms": 12.0}
    assert again.params == {
        "max_depth": 6,
        "lr": 0.1,
        "criterion": "gini",
        "balanced": True,
        "seed": None,
    }
    assert again.lineage.to_dict() == {**LINEAGE, "parents": ["base/1"]}
    assert again.tags == {"owner": "ana"}
    assert again.description == "first"
    assert again.to_dict()["lineage"]["parents"] == ["base/1"]


def test_parent_given_by_label_is_pinned_to_its_number(
    reg: Registry, model_dir: Callable[..., Path]
) -> None:
    reg.register("base", model_dir("1"))
    reg.register("base", model_dir("2"))
    child = reg.register("fraud", model_dir("a"), lineage={"parents": ["base@latest"]})
    reg.register("base", model_dir("3"))
    assert reg.get(child.ref).lineage.parents == ("base/2",)


def test_unknown_parent_is_refused(reg: Registry, model_dir: Callable[..., Path]) -> None:
    with pytest.raises(errors.NotFound, match="'base' does not exist"):
        reg.register("fraud", model_dir("a"), lineage={"parents": ["base/1"]})
    assert reg.search_versions().items == []


def test_editable_fields_change_and_are_recorded(
    reg: Registry, model_dir: Callable[..., Path]
) -> None:
    mv = reg.register("fraud", model_dir("a"), tags={"owner": "ana"})
    reg.set_tags(mv.ref, {"validated": "yes"})
    reg.delete_tag(mv.ref, "owner")
    reg.update_version(mv.ref, description="checked on holdout")
    after = reg.get(mv.ref)
    assert after.tags == {"validated": "yes"}
    assert after.description == "checked on holdout"
    assert after.manifest_digest == mv.manifest_digest
    assert after.files == mv.files
    kinds = [e.kind for e in reg.history("fraud", version=1).all()]
    assert kinds == [
        "version_registered",
        "version_tags_set",
        "version_tag_deleted",
        "version_updated",
    ]


def test_the_sdk_offers_no_way_to_change_an_artifact(reg: Registry) -> None:
    # Immutability by construction: a registered version's bytes, manifest, metrics, params
    # and lineage have no setter anywhere in the interface, and the entity is frozen.
    writable = {name for name in dir(reg) if name.startswith(("set_", "update_"))}
    assert writable == {
        "set_alias",
        "set_tags",
        "set_lifecycle",
        "set_policy",
        "set_gates",
        "update_model",
        "update_version",
    }


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"metrics": {"auc": "high"}}, errors.InvalidArgument),
        ({"metrics": {"auc": float("nan")}}, errors.InvalidArgument),
        ({"metrics": {"auc": True}}, errors.InvalidArgument),
        ({"metrics": {"bad key!": 1.0}}, errors.InvalidName),
        ({"params": {"layers": [1, 2]}}, errors.InvalidArgument),
        ({"params": {"seed": 2**64}}, errors.InvalidArgument),
        ({"lineage": {"run": "x"}}, errors.InvalidArgument),
        ({"lineage": {"run_id": ""}}, errors.InvalidArgument),
        ({"lineage": {"parents": "fraud/1"}}, errors.InvalidArgument),
        ({"lineage": {"parents": ["nonsense"]}}, errors.InvalidReference),
        ({"tags": {"k": 1}}, errors.InvalidArgument),
    ],
)
def test_bad_metadata_writes_nothing(
    reg: Registry,
    model_dir: Callable[..., Path],
    kwargs: dict[str, object],
    error: type[errors.ModelregError],
) -> None:
    with pytest.raises(error):
        reg.register("fraud", model_dir("a"), **kwargs)  # type: ignore[arg-type]
    assert reg.search_versions().items == []


def test_register_missing_path(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound, match="no such file"):
        reg.register("fraud", tmp_path / "missing")


def test_register_empty_folder(reg: Registry, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.InvalidArgument, match="holds no files"):
        reg.register("fraud", tmp_path / "empty")


def test_file_names_that_are_unsafe_paths_are_refused(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "back\\slash.bin").write_bytes(b"x")
    with pytest.raises(errors.InvalidPath, match="backslash"):
        reg.register("fraud", folder)


def test_folder_symlinks_are_refused(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    (folder / "real").mkdir(parents=True)
    (folder / "real" / "w.bin").write_bytes(b"x")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    with pytest.raises(errors.InvalidPath, match="link to a folder"):
        reg.register("fraud", folder)


@pytest.mark.parametrize(
    "path",
    ["../escape.bin", "/etc/passwd", "a/../../b", "a//b", "./a", "C:/win", "a/\x00b", ""],
)
def test_manifest_path_traversal_is_refused(
    reg: Registry, path: str, backing: EmbeddedRegistry
) -> None:
    digest = backing.blobs.put(io.BytesIO(b"payload"))
    entry = FileEntry(path=path, size=digest.size, sha256=digest.sha256)
    with pytest.raises(errors.InvalidPath):
        backing.service.create_version(backing.principal, "fraud", [entry])
    assert reg.search_versions().items == []


def test_manifest_needs_every_blob(reg: Registry, backing: EmbeddedRegistry) -> None:
    # The commit step refuses a manifest whose bytes were never stored, so no version
    # can point at missing blobs.
    entry = FileEntry(path="model.bin", size=3, sha256=hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(errors.IntegrityError, match="not stored"):
        backing.service.create_version(backing.principal, "fraud", [entry])
    stored = backing.blobs.put(io.BytesIO(b"abc"))
    wrong_size = FileEntry(path="model.bin", size=4, sha256=stored.sha256)
    with pytest.raises(errors.IntegrityError, match="manifest says 4"):
        backing.service.create_version(backing.principal, "fraud", [wrong_size])
    with pytest.raises(errors.NotFound):
        reg.get_model("fraud")


def test_duplicate_manifest_paths_are_refused(reg: Registry, backing: EmbeddedRegistry) -> None:
    digest = backing.blobs.put(io.BytesIO(b"abc"))
    entry = FileEntry(path="a", size=3, sha256=digest.sha256)
    clash = FileEntry(path="a/b", size=3, sha256=digest.sha256)
    with pytest.raises(errors.InvalidPath, match="duplicate"):
        backing.service.create_version(backing.principal, "fraud", [entry, entry])
    with pytest.raises(errors.InvalidPath, match="both a file and a folder"):
        backing.service.create_version(backing.principal, "fraud", [entry, clash])


def test_identical_files_are_stored_once(
    reg: Registry, model_dir: Callable[..., Path], backing: EmbeddedRegistry
) -> None:
    reg.register("fraud", model_dir(files={"a.bin": b"same", "b.bin": b"same"}))
    reg.register("other", model_dir(files={"c.bin": b"same"}))
    assert len(list(backing.blobs.iter_blobs())) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metrics": {"bad key!": 1.0}},
        {"lineage": {"parents": ["ghost/1"]}},
        {"tags": {"k": "v" * 6000}},
        {"description": 5},
    ],
)
def test_bad_metadata_is_refused_before_any_bytes_are_stored(
    reg: Registry,
    model_dir: Callable[..., Path],
    kwargs: dict[str, object],
    backing: EmbeddedRegistry,
) -> None:
    with pytest.raises(errors.ModelregError):
        reg.register("fraud", model_dir("a"), **kwargs)  # type: ignore[arg-type]
    assert list(backing.blobs.iter_blobs()) == []


def test_home_with_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelreg

    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("MODELREG_URI", "MODELREG_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELREG_HOME", "~/reg")
    with modelreg.connect() as reg:
        folder = tmp_path / "m"
        folder.mkdir()
        (folder / "w").write_bytes(b"x")
        reg.register("fraud", folder)
    assert (tmp_path / "reg" / "registry.db").exists()
    assert (tmp_path / "reg" / "blobs" / "sha256").is_dir()
    assert not (Path.cwd() / "~").exists()


def test_unreadable_subfolder_fails_the_registration(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "m"
    (folder / "locked").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"a")
    (folder / "locked" / "b.bin").write_bytes(b"b")
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        # Tests run as root, which reads every folder: simulate a permission error.
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(errors.StorageError, match=r"cannot read .*locked"):
        reg.register("fraud", folder)
    monkeypatch.undo()
    assert reg.search_versions().items == []
