"""Blob heads on every backend, embedded and remote: a registered large file's size and
first MiB are on record (so the next new file of that size streams only if its head
differs), and ``gc`` forgets the heads of the blobs it deletes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import modelreg
from modelreg.artifacts.hashing import HEAD_BYTES, Readable, head_digest
from modelreg.client import blobs as client_blobs
from modelreg.embedded import EmbeddedRegistry
from modelreg.service import heads


def head_of(data: bytes) -> str:
    return hashlib.sha256(data[:HEAD_BYTES]).hexdigest()


def test_heads_are_known_until_gc_collects_their_blobs(
    reg: modelreg.Registry,
    backing: EmbeddedRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Remote registrations of files this large stream while hashed.
    monkeypatch.setattr(client_blobs, "STREAM_FROM", 2 * 1024 * 1024)
    data = os.urandom(3 * 1024 * 1024 + 7)
    small = b"not worth a head"
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(data)
    (tmp_path / "model" / "config.json").write_bytes(small)
    version = reg.register("heads", tmp_path / "model")
    reg.pull(version.ref, tmp_path / "pulled")
    assert (tmp_path / "pulled" / "weights.bin").read_bytes() == data

    service, actor = backing.service, backing.principal
    asked = [
        (len(data), head_of(data)),
        (len(data) + 1, head_of(data)),
        (len(data), head_of(small)),
        (len(small), head_of(small)),
        (len(data), head_of(data)),  # asked twice, answered twice
    ]
    assert service.known_heads(actor, asked) == [True, False, False, False, True]

    reg.delete_version(version.ref)
    report = reg.gc("0s")
    assert report.deleted_blobs == 2
    assert service.known_heads(actor, asked) == [False] * len(asked)


def test_registering_a_stored_blob_again_reads_no_head_back(
    reg: modelreg.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_blobs, "STREAM_FROM", 2 * 1024 * 1024)
    reads: list[str] = []
    real = head_digest

    def counted(src: Readable) -> str:
        reads.append("read")
        return real(src)

    monkeypatch.setattr(heads, "head_digest", counted)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(3 * 1024 * 1024))
    reg.register("first", weights)
    assert reads == ["read"]
    reg.register("second", weights)
    reg.register("first", weights)
    assert reads == ["read"]
