"""Pure domain rules: references, names and manifests."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelreg import errors
from modelreg.domain.manifest import FileEntry, Manifest, validate_relpath, validate_source
from modelreg.domain.names import validate_alias, validate_key, validate_model_name
from modelreg.domain.refs import Ref, parse_ref

SHA = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("fraud/7", Ref("fraud", version=7)),
        ("fraud@production", Ref("fraud", label="production")),
        ("fraud@Champion", Ref("fraud", label="champion")),
        ("fraud-v2.1_x@latest", Ref("fraud-v2.1_x", label="latest")),
    ],
)
def test_parse_ref(text: str, ref: Ref) -> None:
    assert parse_ref(text) == ref
    assert str(parse_ref(str(ref))) == str(ref)


@pytest.mark.parametrize(
    "text", ["fraud", "fraud/", "fraud/-1", "fraud/1.5", "/1", "@x", "a@b/c", 7]
)
def test_bad_refs(text: object) -> None:
    with pytest.raises(errors.InvalidReference):
        parse_ref(text)


def test_names() -> None:
    assert validate_model_name("a") == "a"
    assert validate_model_name("A1.b-c_d") == "A1.b-c_d"
    with pytest.raises(errors.InvalidName):
        validate_model_name(None)
    assert validate_alias("champion") == "champion"
    with pytest.raises(errors.InvalidName, match="reserved"):
        validate_alias("production", frozenset({"production"}))
    assert validate_key("eval/auc:holdout 2", "metric") == "eval/auc:holdout 2"
    for bad in ("", " x", "x ", "-x", "a\nb", "k" * 251):
        with pytest.raises(errors.InvalidName):
            validate_key(bad, "metric")


@pytest.mark.parametrize("path", ["a", "a/b.c", "dir/sub/file", ".hidden", "a..b", "…/ünï"])
def test_safe_paths(path: str) -> None:
    assert validate_relpath(path) == path


@pytest.mark.parametrize(
    "path",
    ["", "/abs", "../up", "a/../b", "a/./b", "a//b", "a/", "c:/x", "a\\b", "a\tb", "x" * 1025],
)
def test_unsafe_paths(path: str) -> None:
    with pytest.raises(errors.InvalidPath):
        validate_relpath(path)


def test_manifest_digest_is_canonical() -> None:
    one = Manifest.build([FileEntry("b", 1, SHA), FileEntry("a", 1, SHA)])
    two = Manifest.build([FileEntry("a", 1, SHA), FileEntry("b", 1, SHA)])
    assert one.digest == two.digest
    assert [f.path for f in one.files] == ["a", "b"]
    doc = json.loads(one.canonical_json())
    assert doc == {"format": 1, "files": [f.to_dict() for f in one.files]}
    assert one.digest == "sha256:" + hashlib.sha256(one.canonical_json()).hexdigest()
    changed = Manifest.build([FileEntry("a", 1, SHA), FileEntry("b", 2, SHA)])
    assert changed.digest != one.digest


def test_manifest_rejects_bad_entries() -> None:
    with pytest.raises(errors.InvalidArgument, match="at least one file"):
        Manifest.build([])
    with pytest.raises(errors.InvalidArgument, match="digest"):
        Manifest.build([FileEntry("a", 1, "ABC")])
    with pytest.raises(errors.InvalidArgument, match="size"):
        Manifest.build([FileEntry("a", -1, SHA)])
    with pytest.raises(errors.InvalidPath, match="both a file and a folder"):
        Manifest.build([FileEntry("a/b", 1, SHA), FileEntry("a/b/c", 1, SHA)])


def test_external_sources_are_part_of_the_digest_without_changing_others() -> None:
    plain = FileEntry("w.bin", 1, SHA)
    assert "source" not in plain.to_dict()  # digests of manifests without them stay put
    stored = Manifest.build([plain])
    here = Manifest.build([FileEntry("w.bin", 1, SHA, "s3://bucket/models/w.bin")])
    there = Manifest.build([FileEntry("w.bin", 1, SHA, "s3://bucket/other/w.bin")])
    assert len({stored.digest, here.digest, there.digest}) == 3
    assert json.loads(here.canonical_json())["files"][0]["source"] == "s3://bucket/models/w.bin"


@pytest.mark.parametrize(
    "source",
    ["s3://bucket/key", "s3://b-1.x/a/b/c.bin", "https://host:8443/a/m.onnx?v=2", "file:///x/y"],
)
def test_valid_sources(source: str) -> None:
    assert validate_source(source) == source


@pytest.mark.parametrize(
    "source",
    [
        "",
        "s3://bucket",
        "s3://bucket/",
        "s3://bucket/dir/",
        "s3:///key",
        "https://host",
        "gs://bucket/key",
        "file://host/x",
        "file:///",
        "https://host/a b",
        "https://host/a\nb",
        "s3://b/" + "k" * 2000,
        "relative/path",
    ],
)
def test_invalid_sources(source: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        validate_source(source)
    with pytest.raises(errors.InvalidArgument):
        Manifest.build([FileEntry("w.bin", 1, SHA, source)])
