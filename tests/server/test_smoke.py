"""One real ``modelreg serve`` process, reached the ways users reach it.

The module shares one server over an embedded registry (SQLite and a blob folder in a
temporary MODELREG_HOME) with two workers, so requests land on either worker and
``/metrics`` has to add both up. Tests work on their own models. The token tests start
a server of their own; the TCP_NODELAY tests need none.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from uvicorn.config import Config as UvicornConfig
from uvicorn.server import ServerState

import modelreg
from modelreg import errors
from modelreg.client import RemoteRegistry
from modelreg.client import blobs as client_blobs
from modelreg.client import registry as client_registry
from modelreg.client.direct import DirectBlobs
from modelreg.domain.manifest import FileEntry
from modelreg.server.run import NoDelayProtocol, set_nodelay
from modelreg.service import transfer

CONSOLE_SCRIPT = Path(sys.executable).with_name("modelreg")
StartServers = Callable[..., list[str]]


@pytest.fixture(scope="module")
def server_url(start_module_servers: StartServers, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The module's server: embedded registry in a fresh home, two workers."""
    home = tmp_path_factory.mktemp("home")
    (url,) = start_module_servers({"MODELREG_HOME": str(home)}, workers=(2,))
    return url


@pytest.fixture
def alice(server_url: str) -> Iterator[modelreg.Registry]:
    """The SDK connected to the module's server as 'alice'."""
    with modelreg.connect(server_url, user="alice") as registry:
        yield registry


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative POSIX path (hidden staging folders too)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------- SDK


def test_sdk_round_trip_through_the_server(alice: modelreg.Registry, tmp_path: Path) -> None:
    assert isinstance(alice, RemoteRegistry)
    assert alice.info()["mode"] == "remote"
    first = {
        "model.bin": bytes(range(256)) * 64,
        "config/params.json": b'{"depth": 3}',
        "README.md": b"a smoke test model\n",
    }
    second = {**first, "model.bin": bytes(reversed(range(256))) * 64}
    v1 = alice.register(
        "smoke",
        write_tree(tmp_path / "v1", first),
        metrics={"auc": 0.91, "loss": 0.25},
        params={"depth": 3, "kernel": "rbf"},
        lineage={"run_id": "run-1", "code_commit": "abc123", "framework": "sklearn"},
        description="first",
    )
    assert (v1.ref, v1.stage, v1.created_by) == ("smoke/1", "development", "alice")
    assert {f.path: f.size for f in v1.files} == {k: len(v) for k, v in first.items()}
    assert v1.lineage.run_id == "run-1"
    v2 = alice.register(
        "smoke",
        write_tree(tmp_path / "v2", second),
        metrics={"auc": 0.85, "loss": 0.4},
        params={"depth": 4, "kernel": "rbf"},
        lineage={"run_id": "run-2", "parents": ["smoke/1"]},
    )
    assert v2.version == 2
    assert v2.manifest_digest != v1.manifest_digest

    alice.transition("smoke/1", "staging", reason="candidate")
    promoted = alice.transition("smoke/1", "production", reason="ship it")
    assert promoted.stage == "production"
    assert alice.resolve("smoke@production").version == 1
    assert alice.set_alias("smoke", "champion", 1).aliases == ("champion",)
    assert alice.resolve("smoke@champion").version == 1
    assert alice.resolve("smoke@latest").version == 2

    found = alice.search_versions(filter="name = 'smoke' AND metrics.auc >= 0.9")
    assert [v.ref for v in found.items] == ["smoke/1"]
    found = alice.search_versions(filter="name = 'smoke' AND stage = 'development'")
    assert [v.ref for v in found.items] == ["smoke/2"]

    events = list(alice.history("smoke").all())
    assert {e.actor for e in events} == {"alice"}
    moves = [
        (e.version, e.from_stage, e.to_stage, e.reason) for e in events if e.kind == "stage_changed"
    ]
    assert moves == [
        (1, "development", "staging", "candidate"),
        (1, "staging", "production", "ship it"),
    ]
    kinds = [e.kind for e in events]
    assert kinds.count("version_registered") == 2
    assert "alias_set" in kinds

    comparison = alice.compare("smoke/1", "smoke/2")
    auc = next(d for d in comparison.metrics if d.key == "auc")
    assert (auc.a, auc.b) == (0.91, 0.85)
    assert auc.delta == pytest.approx(-0.06)
    assert {d.key: (d.a, d.b) for d in comparison.params}["depth"] == (3, 4)

    pulled = alice.pull("smoke@production", tmp_path / "pulled")
    assert pulled.version == 1
    assert read_tree(tmp_path / "pulled") == first
    alice.pull("smoke/2", tmp_path / "pulled-2")
    assert read_tree(tmp_path / "pulled-2") == second

    report = alice.verify()
    assert report.ok, report.problems
    assert report.checked_blobs >= 4  # 3 files, plus the one that changed in version 2
    gc = alice.gc("0s", dry_run=True)
    assert gc.dry_run
    assert gc.deleted_blobs == 0  # everything stored is referenced


@pytest.mark.parametrize("size", [100, 3 * 1024 * 1024])
def test_a_file_changed_after_hashing_is_refused_by_the_server(
    alice: modelreg.Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    """Small files go on the session's kept-alive connection, large ones on a connection
    of their own; either way the server checks the bytes against the declared digest."""
    name = f"changed-after-hashing-{size}"
    path = tmp_path / "model" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(size))
    hash_tree = client_registry._hash_tree

    def hash_then_change(files: list[tuple[str, Path]]) -> list[FileEntry]:
        entries = hash_tree(files)
        path.write_bytes(os.urandom(size))
        return entries

    monkeypatch.setattr(client_registry, "_hash_tree", hash_then_change)
    with pytest.raises(errors.DigestMismatch):
        alice.register(name, path.parent)
    with pytest.raises(errors.NotFound):
        alice.get(f"{name}/1")
    monkeypatch.undo()
    # The same session goes on working, and the file as it is now registers.
    assert alice.register(name, path.parent).version == 1
    pulled = alice.pull(f"{name}/1", tmp_path / "pulled")
    assert (tmp_path / "pulled" / "weights.bin").read_bytes() == path.read_bytes()
    assert pulled.files[0].size == size


def test_a_large_new_file_streams_while_it_is_hashed(
    alice: modelreg.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over real sockets: the file is sent (sendfile) while a thread hashes it, the server
    names the blob, and the same bytes are not sent again."""
    monkeypatch.setattr(client_blobs, "STREAM_FROM", 2 * 1024 * 1024)
    sent: list[tuple[str, str]] = []
    upload = DirectBlobs.upload

    def recorded(self: DirectBlobs, *args: Any, method: str = "PUT") -> bytes:
        sent.append((method, args[1]))
        return upload(self, *args, method=method)

    monkeypatch.setattr(DirectBlobs, "upload", recorded)
    data = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    version = alice.register("streamed", path)
    assert sent == [("POST", "/api/v1/blobs")]
    assert version.files[0].size == len(data)
    alice.pull("streamed/1", tmp_path / "pulled")
    assert (tmp_path / "pulled" / "weights.bin").read_bytes() == data
    assert alice.register("streamed", path).version == 2
    assert sent == [("POST", "/api/v1/blobs")]  # known now: hashed, found, not sent


class _LyingHash:
    """``service.transfer`` as the client's blob module sees it, with a hash that does not
    match what was read: as when a file changes between the hash and the send."""

    each_file = staticmethod(transfer.each_file)

    @staticmethod
    def hash_file(rel: str, full: Path) -> FileEntry:
        entry = transfer.hash_file(rel, full)
        return FileEntry(entry.path, entry.size, "0" * 64)


def test_a_streamed_file_whose_hash_differs_registers_nothing(
    alice: modelreg.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_blobs, "STREAM_FROM", 2 * 1024 * 1024)
    monkeypatch.setattr(client_blobs, "transfer", _LyingHash)
    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    with pytest.raises(errors.DigestMismatch) as caught:
        alice.register("lying-hash", path)
    assert caught.value.details["path"] == "weights.bin"
    with pytest.raises(errors.NotFound):
        alice.get("lying-hash/1")


def test_sdk_errors_keep_their_class_over_http(alice: modelreg.Registry) -> None:
    with pytest.raises(errors.NotFound) as caught:
        alice.get("nobody/1")
    assert caught.value.code == "NOT_FOUND"
    with pytest.raises(errors.InvalidFilter):
        alice.search_versions(filter="stage ==== 'x'")


# --------------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class Cli:
    """The ``modelreg`` console script as a separate process."""

    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CONSOLE_SCRIPT), *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"modelreg {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fail(self, *args: str, code: str) -> str:
        """A command that must print exactly one ``error CODE: ...`` line and exit 1."""
        result = self.run(*args)
        assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error {code}: "), result.stderr
        return lines[0]


def cli(tmp_path: Path, **env: str) -> Cli:
    """The CLI with nothing but ``env`` set among registry settings; the home it would fall
    back on stays empty, so a command that did not go to the server shows up."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    full.update(COLUMNS="200", MODELREG_HOME=str(tmp_path / "cli-home"), MODELREG_USER="bob")
    full.update(env)
    return Cli(full)


def test_cli_end_to_end_through_the_server(server_url: str, tmp_path: Path) -> None:
    files = {"weights.bin": os.urandom(4096), "meta/info.txt": b"cli model\n"}
    source = write_tree(tmp_path / "src", files)
    run = cli(tmp_path, MODELREG_URI=server_url)

    run.ok("create", "clitest", "--description", "made by the CLI")
    registered = run.json(
        "register", "clitest", str(source), "-m", "auc=0.8", "-p", "depth=3", "--run-id", "r-9"
    )
    assert (registered["name"], registered["version"]) == ("clitest", 1)
    run.ok("transition", "clitest/1", "staging")
    run.ok("transition", "clitest/1", "production", "--reason", "cli release")
    shown = run.json("show", "clitest/1")
    assert shown["stage"] == "production"
    assert (shown["metrics"], shown["params"]) == ({"auc": 0.8}, {"depth": 3})
    assert shown["lineage"]["run_id"] == "r-9"
    # --uri instead of the environment
    by_option = cli(tmp_path)
    resolved = by_option.ok("--uri", server_url, "resolve", "clitest@production")
    assert resolved.strip() == "clitest/1"

    out = run.ok("pull", "clitest@production", str(tmp_path / "pulled"))
    assert "verified" in out
    assert read_tree(tmp_path / "pulled") == files
    events = run.json("history", "clitest")["items"]
    assert {e["actor"] for e in events} == {"bob"}
    moves = [e["to_stage"] for e in events if e["kind"] == "stage_changed"]
    assert moves == ["staging", "production"]
    assert run.json("verify")["problems"] == []

    # The server saw all of it, and nothing went to the home the CLI would fall back on.
    with modelreg.connect(server_url) as sdk:
        assert sdk.get("clitest/1").created_by == "bob"
    assert not (tmp_path / "cli-home").exists()

    line = run.fail("show", "clitest/9", code="NOT_FOUND")
    assert "clitest" in line


# ------------------------------------------------------------------ probes and metrics


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum of ``name`` over every sample whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def test_probes(server_url: str) -> None:
    health = httpx.get(f"{server_url}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = httpx.get(f"{server_url}/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_metrics_add_up_across_workers(server_url: str, tmp_path: Path) -> None:
    payload = os.urandom(10_000)
    with modelreg.connect(server_url, user="metered") as sdk:
        sdk.register("metered", write_tree(tmp_path / "m", {"w.bin": payload}))
        sdk.transition("metered/1", "staging")
        sdk.pull("metered/1", tmp_path / "out")
    route = ("GET", "/api/v1/lifecycle", "200")  # no other test asks for the lifecycle
    labels = dict(zip(("method", "route", "status"), route, strict=True))
    before = total(scrape(server_url), "modelreg_http_requests_total", **labels)
    requests = 20
    for _ in range(requests):
        # A new connection each time, so that both workers get some of them.
        assert httpx.get(f"{server_url}/api/v1/lifecycle").status_code == 200

    # A worker counts a request once its response is sent: wait for the count to arrive.
    deadline = time.monotonic() + 10
    samples = scrape(server_url)
    while total(samples, "modelreg_http_requests_total", **labels) < before + requests:
        assert time.monotonic() < deadline, total(samples, "modelreg_http_requests_total")
        time.sleep(0.05)
        samples = scrape(server_url)
    assert total(samples, "modelreg_http_requests_total", **labels) == before + requests

    assert total(samples, "modelreg_http_requests_total") > before + requests
    assert total(samples, "modelreg_registrations_total") >= 1
    assert total(samples, "modelreg_transitions_total", stage="staging") >= 1
    assert total(samples, "modelreg_blob_bytes_total", direction="in") >= len(payload)
    assert total(samples, "modelreg_blob_bytes_total", direction="out") >= len(payload)
    latency = total(samples, "modelreg_http_request_duration_seconds_count", route=labels["route"])
    assert latency >= requests

    # Whichever worker answers the scrape, it reports the same sums.
    counts = {total(scrape(server_url), "modelreg_http_requests_total", **labels) for _ in range(6)}
    assert counts == {before + requests}


def test_openapi_and_docs(server_url: str) -> None:
    response = httpx.get(f"{server_url}/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["version"] == modelreg.__version__
    paths = set(spec["paths"])
    api = {p for p in paths if p.startswith("/api/v1/")}
    assert "/api/v1/models" in api
    assert "/api/v1/models/{name}/versions" in api
    assert paths - api <= {"/healthz", "/readyz", "/metrics"}
    docs = httpx.get(f"{server_url}/api/v1/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/api/v1/openapi.json" in docs.text


def test_unknown_endpoint_answers_the_error_shape(server_url: str) -> None:
    response = httpx.get(f"{server_url}/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


# ---------------------------------------------------------------------- authentication


def test_authentication_on_a_real_server(start_servers: StartServers, tmp_path: Path) -> None:
    home = tmp_path / "home"
    # The first admin is made on the server host, straight on its database.
    with modelreg.connect(home=str(home)) as host:
        host.create_principal("root")
        host.grant("root", "admin")
        token = host.create_token("root").secret
    (url,) = start_servers({"MODELREG_HOME": str(home), "MODELREG_AUTH": "on"}, workers=(2,))
    for wrong in (None, "wrong", token[:-1] + ("x" if token[-1] != "x" else "y")):
        with (
            modelreg.connect(url, token=wrong) as sdk,
            pytest.raises(errors.Unauthenticated) as caught,
        ):
            sdk.search_models()
        assert (caught.value.code, caught.value.status) == ("UNAUTHENTICATED", 401)
    raw = httpx.get(f"{url}/api/v1/models")
    assert raw.status_code == 401
    assert raw.headers["www-authenticate"] == "Bearer"
    assert raw.json()["error"]["code"] == "UNAUTHENTICATED"

    with modelreg.connect(url, token=token, user="mallory") as sdk:
        # The header names nobody once tokens decide: the actor is the token's principal.
        sdk.create_model("guarded")
        assert [m.name for m in sdk.search_models().items] == ["guarded"]
        assert sdk.history("guarded").items[0].actor == "root"
        spare = sdk.create_token(name="spare")

    with_token = cli(tmp_path, MODELREG_URI=url, MODELREG_TOKEN=token)
    assert [m["name"] for m in with_token.json("models")["items"]] == ["guarded"]
    cli(tmp_path, MODELREG_URI=url).fail("models", code="UNAUTHENTICATED")

    # A revoked token is refused from the next request on, by every worker.
    with modelreg.connect(url, token=spare.secret) as sdk:
        assert sdk.whoami()["name"] == "root"
        sdk.revoke_token(spare.info.id)
        for _ in range(6):
            with pytest.raises(errors.Unauthenticated, match="revoked"):
                sdk.get_model("guarded")

    # Probes stay open: load balancers and orchestrators carry no token.
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/readyz").status_code == 200


# ------------------------------------------------------------------------- TCP_NODELAY


@pytest.fixture
def accepted() -> Iterator[socket.socket]:
    """The server side of a real loopback TCP connection, as accept() returns it."""
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()),
    ):
        conn, _ = listener.accept()
        with conn:
            yield conn


def nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_set_nodelay_turns_nagle_off_on_an_accepted_socket(accepted: socket.socket) -> None:
    assert nodelay(accepted) == 0
    set_nodelay(asyncio.Transport(extra={"socket": accepted}))
    assert nodelay(accepted) != 0


def test_set_nodelay_leaves_other_transports_alone() -> None:
    set_nodelay(asyncio.Transport())  # no socket at all: nothing to do, no error
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        set_nodelay(asyncio.Transport(extra={"socket": left}))  # TCP_NODELAY is TCP only


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError("no request expected")


def test_the_server_protocol_sets_nodelay_when_a_connection_opens(
    accepted: socket.socket,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        config = UvicornConfig(app=_asgi_app, log_config=None)
        protocol = NoDelayProtocol(
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
        assert nodelay(accepted) == 0
        protocol.connection_made(asyncio.Transport(extra={"socket": accepted}))
        assert nodelay(accepted) != 0
        assert protocol.client == accepted.getpeername()
    finally:
        loop.close()
