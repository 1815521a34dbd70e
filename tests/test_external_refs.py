"""External references: files that stay in a bucket, on a web server or on local disk.

Registration records each file's size and SHA-256 by reading it once and stores nothing;
pull fetches and verifies it; verify reports what changed or disappeared since.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import s3server
from inprocess import InProcessTransport
from modelreg import errors
from modelreg.client import RemoteRegistry
from modelreg.embedded import EmbeddedRegistry
from modelreg.protocol import Registry
from modelreg.server import create_app

WEIGHTS = b"weights that live elsewhere " * 1000


@pytest.fixture
def bucket(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket holding ``models/w.bin`` and two files under ``models/set/``."""
    s3_server.use(monkeypatch)
    name = s3_server.new_bucket()
    client = s3_server.client()
    client.put_object(Bucket=name, Key="models/w.bin", Body=WEIGHTS)
    client.put_object(Bucket=name, Key="models/set/a.bin", Body=b"aaa")
    client.put_object(Bucket=name, Key="models/set/sub/b.bin", Body=b"bbbb")
    return name


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on loopback: (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def no_blobs(backing: EmbeddedRegistry) -> bool:
    return list(backing.blobs.iter_blobs()) == []


def test_an_s3_object_is_registered_pulled_and_verified_in_place(
    reg: Registry,
    backing: EmbeddedRegistry,
    bucket: str,
    s3_server: s3server.S3Server,
    tmp_path: Path,
) -> None:
    uri = f"s3://{bucket}/models/w.bin"
    mv = reg.register("ext", uri, metrics={"auc": 0.9})
    (entry,) = mv.files
    assert (entry.path, entry.size, entry.sha256, entry.source) == (
        "w.bin",
        len(WEIGHTS),
        hashlib.sha256(WEIGHTS).hexdigest(),
        uri,
    )
    assert reg.get("ext/1").files == mv.files
    assert no_blobs(backing)  # nothing was copied
    reg.pull("ext/1", tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == WEIGHTS
    report = reg.verify()
    assert report.ok
    assert (report.checked_external, report.checked_blobs) == (1, 0)

    # Changed behind the registry's back: same size, other bytes.
    s3_server.client().put_object(Bucket=bucket, Key="models/w.bin", Body=WEIGHTS[:-1] + b"!")
    dest = tmp_path / "again"
    with pytest.raises(errors.IntegrityError, match="changed since registration"):
        reg.pull("ext/1", dest)
    assert list(dest.iterdir()) == []
    (problem,) = reg.verify().problems
    assert (problem.problem, problem.source, problem.referenced_by) == ("changed", uri, ("ext/1",))

    # Gone.
    s3_server.client().delete_object(Bucket=bucket, Key="models/w.bin")
    with pytest.raises(errors.IntegrityError, match="has disappeared"):
        reg.pull("ext/1", dest)
    (problem,) = reg.verify().problems
    assert (problem.problem, problem.source) == ("missing", uri)


def test_an_s3_prefix_registers_every_object_under_it(
    reg: Registry, bucket: str, tmp_path: Path
) -> None:
    mv = reg.register("ext", f"s3://{bucket}/models/set/")
    assert [(f.path, f.size, f.source) for f in mv.files] == [
        ("a.bin", 3, f"s3://{bucket}/models/set/a.bin"),
        ("sub/b.bin", 4, f"s3://{bucket}/models/set/sub/b.bin"),
    ]
    reg.pull("ext/1", tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == b"bbbb"
    with pytest.raises(errors.NotFound, match="no files under"):
        reg.register("ext", f"s3://{bucket}/nothing/")
    with pytest.raises(errors.NotFound, match="does not exist"):
        reg.register("ext", f"s3://{bucket}/models/absent.bin")
    assert [v.version for v in reg.list_versions("ext")] == [1]


def test_an_https_file_is_registered_and_its_changes_reported(
    reg: Registry, backing: EmbeddedRegistry, web_root: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = web_root
    (root / "model.onnx").write_bytes(WEIGHTS)
    uri = f"{base}/model.onnx"
    mv = reg.register("web", uri)
    assert [(f.path, f.source) for f in mv.files] == [("model.onnx", uri)]
    assert no_blobs(backing)
    reg.pull("web/1", tmp_path / "out")
    assert (tmp_path / "out" / "model.onnx").read_bytes() == WEIGHTS
    assert reg.verify().ok
    (root / "model.onnx").write_bytes(WEIGHTS + b"more")
    with pytest.raises(errors.IntegrityError, match="more than the recorded"):
        reg.pull("web/1", tmp_path / "again")
    assert [p.problem for p in reg.verify().problems] == ["changed"]
    (root / "model.onnx").unlink()
    assert [p.problem for p in reg.verify().problems] == ["missing"]
    with pytest.raises(errors.NotFound, match="HTTP 404"):
        reg.register("web", f"{base}/absent.bin")


def test_a_local_folder_can_be_referenced_in_place(
    reg: Registry,
    backing: EmbeddedRegistry,
    model_dir: Callable[..., Path],
    tmp_path: Path,
) -> None:
    folder = model_dir(files={"w.bin": b"local weights", "cfg/a.json": b"{}"})
    if isinstance(reg, RemoteRegistry):
        with pytest.raises(errors.InvalidArgument, match="is a local path"):
            reg.register("here", folder, external=True)
        return
    mv = reg.register("here", folder, external=True)
    assert {f.path: f.source for f in mv.files} == {
        "cfg/a.json": (folder / "cfg" / "a.json").resolve().as_uri(),
        "w.bin": (folder / "w.bin").resolve().as_uri(),
    }
    assert no_blobs(backing)
    reg.pull("here/1", tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == b"local weights"
    (folder / "w.bin").write_bytes(b"LOCAL weights")
    with pytest.raises(errors.IntegrityError, match="changed since registration"):
        reg.pull("here/1", tmp_path / "again")
    (folder / "cfg" / "a.json").unlink()
    problems = {p.source: p.problem for p in reg.verify().problems}
    assert problems == {
        (folder / "w.bin").resolve().as_uri(): "changed",
        (folder / "cfg" / "a.json").resolve().as_uri(): "missing",
    }


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://host/file.bin", "unsupported external source"),
        ("s3://bucket", "must name one file"),
        ("https://host/", "must name one file"),
        ("https://host/a b", "spaces"),
    ],
)
def test_unusable_uris_are_refused(reg: Registry, uri: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        reg.register("bad", uri)
    with pytest.raises(errors.NotFound):
        reg.get_model("bad")


def test_the_server_refuses_local_sources(backing: EmbeddedRegistry) -> None:
    """The server would read such a path on its own disk when it verifies."""
    app = create_app(backing.config)
    client = httpx.Client(transport=InProcessTransport(app))
    remote = RemoteRegistry("http://modelreg.test", client=client)
    source = "file:///etc/passwd"
    body = {"files": [{"path": "x", "size": 1, "sha256": "a" * 64, "source": source}]}
    try:
        with pytest.raises(errors.InvalidArgument, match="only s3:// and http"):
            remote.session.call("POST", "/api/v1/models/sneaky/versions", json=body)
    finally:
        remote.close()
        app.state.registry.close()
    with pytest.raises(errors.NotFound):
        backing.get_model("sneaky")
