"""The ``modelreg`` command line, run end to end as real processes.

Each process finds its embedded registry through ``MODELREG_HOME``. Tests that work on
their own models share one module-scoped registry (each process costs about half a
second); tests that change registry-wide state (the lifecycle, blobs on disk) get a
fresh one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CONSOLE_SCRIPT = Path(sys.executable).with_name("modelreg")


@dataclass(frozen=True)
class Cli:
    """Runs the CLI against one registry home."""

    home: Path

    def run(
        self, *args: str, command: Sequence[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
        env.update(
            MODELREG_HOME=str(self.home),
            MODELREG_USER="tester",
            MODELREG_FSYNC="false",
            COLUMNS="200",  # keep table rows on one line for the assertions
        )
        prefix = list(command) if command else [sys.executable, "-m", "modelreg.cli"]
        return subprocess.run(
            [*prefix, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fail(self, *args: str, code: str) -> str:
        """Run a command that must fail with one ``error CODE: …`` line; returns it."""
        result = self.run(*args)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert result.stderr.startswith(f"error {code}: "), result.stderr
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
        return result.stderr


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def blob_path(home: Path, sha256: str) -> Path:
    return home / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256


@dataclass(frozen=True)
class Shared:
    cli: Cli
    v2_dir: Path
    v1: dict[str, Any]
    v2: dict[str, Any]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    """The ``fraud`` model with two registered versions; 2 derives from 1."""
    root = tmp_path_factory.mktemp("shared")
    cli = Cli(root / "home")
    v1_dir = write_files(
        root / "v1", {"model.pkl": b"weights-1" * 1000, "config/features.txt": b"amount\n"}
    )
    v2_dir = write_files(
        root / "v2", {"model.pkl": b"weights-2" * 1000, "config/features.txt": b"amount\nhour\n"}
    )
    cli.ok("create", "fraud", "--description", "Card fraud", "--tag", "team=risk")
    v1 = cli.json(
        *("register", "fraud", str(v1_dir), "--description", "baseline"),
        *("--metric", "auc=0.95", "--metric", "f1=0.80"),
        *("--param", "max_depth=6", "--param", "learning_rate=0.1"),
        *("--param", "early_stop=true", "--param", "booster=gbtree"),
        *("--tag", "owner=ana", "--run-id", "run-1", "--framework", "sklearn"),
        *("--dataset", "transactions@2026-11"),
    )
    v2 = cli.json(
        *("register", "fraud", str(v2_dir), "--metric", "auc=0.93", "--metric", "f1=0.85"),
        *("--param", "max_depth=8", "--parent", "fraud/1", "--code-commit", "abc123"),
        *("--run-uri", "https://runs.example/2", "--dataset-digest", "sha256:" + "0" * 64),
    )
    return Shared(cli=cli, v2_dir=v2_dir, v1=v1, v2=v2)


@pytest.fixture
def fresh(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_console_script_lists_models(shared: Shared) -> None:
    assert CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} is not installed"
    result = shared.cli.run("--json", "models", command=[str(CONSOLE_SCRIPT)])
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    fraud = next(m for m in page["items"] if m["name"] == "fraud")
    assert fraud["latest_version"] == 2
    assert fraud["tags"] == {"team": "risk"}
    assert fraud["description"] == "Card fraud"
    assert page["next_page_token"] is None


def test_register_prints_version_and_show_reads_it_back(shared: Shared) -> None:
    assert (shared.v1["ref"], shared.v2["ref"]) == ("fraud/1", "fraud/2")
    v1 = shared.cli.json("show", "fraud/1")
    assert v1 == shared.v1
    assert v1["metrics"] == {"auc": 0.95, "f1": 0.80}
    assert v1["params"] == {
        "max_depth": 6,
        "learning_rate": 0.1,
        "early_stop": True,
        "booster": "gbtree",
    }
    assert type(v1["params"]["max_depth"]) is int
    assert v1["lineage"]["dataset"] == "transactions"
    assert v1["lineage"]["dataset_version"] == "2026-11"
    assert v1["lineage"]["framework"] == "sklearn"
    assert v1["tags"] == {"owner": "ana"}
    assert [f["path"] for f in v1["files"]] == ["config/features.txt", "model.pkl"]
    assert shared.v2["lineage"]["parents"] == ["fraud/1"]
    assert shared.v2["lineage"]["code_commit"] == "abc123"
    assert shared.v2["stage"] == "development"


def test_show_prints_a_readable_version(shared: Shared) -> None:
    text = shared.cli.ok("show", "fraud/2")
    assert shared.v2["manifest_digest"] in text  # whole, not cut off
    for expected in ("development", "config/features.txt", "auc", "max_depth", "fraud/1"):
        assert expected in text


def test_versions_pages_follow_tokens(shared: Shared) -> None:
    first = shared.cli.json("versions", "fraud", "--page-size", "1")
    assert [v["version"] for v in first["items"]] == [2]
    assert first["next_page_token"]
    rest = shared.cli.json(
        "versions", "fraud", "--page-size", "1", "--page-token", first["next_page_token"], "--all"
    )
    assert [v["version"] for v in rest["items"]] == [1]
    assert rest["next_page_token"] is None


def test_transition_then_resolve_production(shared: Shared) -> None:
    shared.cli.ok("transition", "fraud/2", "staging")
    moved = shared.cli.json("transition", "fraud/2", "production", "--reason", "beats v1 on f1")
    assert moved["stage"] == "production"
    assert shared.cli.ok("resolve", "fraud@production") == "fraud/2\n"


def test_alias_set_and_rm(shared: Shared) -> None:
    assert "fraud@champion -> fraud/1" in shared.cli.ok("alias", "set", "fraud", "champion", "1")
    resolved = shared.cli.json("resolve", "fraud@champion")
    assert resolved["version"] == 1
    assert resolved["aliases"] == ["champion"]
    shared.cli.ok("alias", "rm", "fraud", "champion")
    shared.cli.fail("resolve", "fraud@champion", code="NOT_FOUND")


def test_tags_on_versions(shared: Shared) -> None:
    shared.cli.ok("tag", "set", "fraud/1", "reviewed=yes", "validated=yes")
    shared.cli.ok("tag", "rm", "fraud/1", "validated")
    hits = shared.cli.json("search", "tags.reviewed = 'yes'")
    assert [(v["ref"], v["tags"]) for v in hits["items"]] == [
        ("fraud/1", {"owner": "ana", "reviewed": "yes"})
    ]


def test_search_filters_and_orders_by_metric(shared: Shared) -> None:
    page = shared.cli.json(
        "search", "name = 'fraud' AND metrics.auc > 0.9", "--order-by", "-metrics.auc"
    )
    # The default order is newest first; the metric order puts version 1 first.
    assert [v["ref"] for v in page["items"]] == ["fraud/1", "fraud/2"]


def test_compare_shows_deltas_and_differences(shared: Shared) -> None:
    text = shared.cli.ok("compare", "fraud/1", "fraud/2")
    assert "delta" in text
    assert "-0.02" in text
    assert "+0.05" in text
    assert "max_depth" in text
    assert "code_commit" in text
    result = shared.cli.json("compare", "fraud/1", "fraud/2")
    deltas = {m["key"]: m["delta"] for m in result["metrics"]}
    assert deltas["auc"] == pytest.approx(-0.02)
    assert deltas["f1"] == pytest.approx(0.05)


def test_history_lists_events(shared: Shared) -> None:
    events = shared.cli.json("history", "fraud")["items"]
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["model_created", "version_registered", "version_registered"]
    assert all(e["actor"] == "tester" for e in events)
    text = shared.cli.ok("history", "fraud", "--version", "1")
    assert "version_registered" in text
    assert "→ development" in text
    assert "model_created" not in text


def test_pull_writes_identical_bytes(shared: Shared, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    out = shared.cli.ok("pull", "fraud/2", str(dest))
    assert out == f"pulled fraud/2 to {dest} (2 files, verified)\n"
    for rel in ("model.pkl", "config/features.txt"):
        assert (dest / rel).read_bytes() == (shared.v2_dir / rel).read_bytes()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["create", "bad name!"], "INVALID_NAME", "bad name!"),
        (["search", "metrics.auc >> 1"], "INVALID_FILTER", "at position 13"),
        (["transition", "fraud/1", "production"], "INVALID_TRANSITION", "'development'"),
        (["register", "fraud", ".", "--metric", "auc"], "INVALID_ARGUMENT", "KEY=VALUE"),
        (["delete", "fraud/1"], "INVALID_ARGUMENT", "--yes"),
    ],
)
def test_errors_print_one_line_with_the_code(
    shared: Shared, args: list[str], code: str, fragment: str
) -> None:
    assert fragment in shared.cli.fail(*args, code=code)


def test_usage_errors_keep_exit_status_2(shared: Shared) -> None:
    result = shared.cli.run("versions")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr


def test_edit_delete_and_collect_a_model(shared: Shared, tmp_path: Path) -> None:
    model = write_files(tmp_path / "m", {"model.bin": b"scratch" * 100})
    version = shared.cli.json("register", "scratch", str(model / "model.bin"))
    assert shared.cli.json("describe", "scratch/1", "first try")["description"] == "first try"
    shared.cli.ok("tag", "set", "scratch", "domain=payments")  # a bare NAME tags the model
    updated = shared.cli.json("model", "update", "scratch", "--description", "try-outs")
    assert (updated["description"], updated["tags"]) == ("try-outs", {"domain": "payments"})

    assert shared.cli.ok("delete", "scratch/1", "--yes") == "deleted scratch/1\n"
    blob = blob_path(shared.cli.home, version["files"][0]["sha256"])
    report = shared.cli.json("gc", "--grace", "0s", "--dry-run")
    assert report == {"deleted_blobs": 1, "deleted_bytes": 700, "kept_recent": 0, "dry_run": True}
    assert blob.exists()

    assert shared.cli.ok("model", "delete", "scratch", "--yes") == "deleted model scratch\n"
    shared.cli.fail("model", "show", "scratch", code="NOT_FOUND")


def test_verify_detects_a_corrupt_blob_and_pull_refuses_it(fresh: Cli, tmp_path: Path) -> None:
    model = write_files(tmp_path / "m", {"model.bin": b"\x00\x01" * 5000})
    version = fresh.json("register", "tiny", str(model / "model.bin"))
    assert fresh.json("verify") == {
        "ok": True,
        "checked_blobs": 1,
        "checked_bytes": 10000,
        "checked_external": 0,
        "problems": [],
    }
    sha = version["files"][0]["sha256"]
    blob = blob_path(fresh.home, sha)
    blob.chmod(0o644)
    blob.write_bytes(b"\xff" * 10000)

    result = fresh.run("verify")
    assert result.returncode == 1
    assert f"{sha} corrupt" in result.stdout
    assert "tiny/1" in result.stdout

    dest = tmp_path / "dest"
    fresh.fail("pull", "tiny/1", str(dest), code="INTEGRITY_ERROR")
    assert not (dest / "model.bin").exists()


def test_lifecycle_set_from_file_then_show(fresh: Cli, tmp_path: Path) -> None:
    lifecycle = {
        "stages": ["draft", "live", "retired"],
        "initial": "draft",
        "transitions": {"draft": ["live"], "live": ["retired"], "retired": ["live"]},
        "exclusive": {"live": "retired"},
    }
    path = tmp_path / "lifecycle.json"
    path.write_text(json.dumps(lifecycle))
    assert "draft, live, retired" in fresh.ok("lifecycle", "set", str(path))
    assert fresh.json("lifecycle", "show") == lifecycle

    path.write_text("{not json")
    fresh.fail("lifecycle", "set", str(path), code="INVALID_ARGUMENT")


def test_db_upgrade_and_info(fresh: Cli) -> None:
    revision = fresh.json("db", "upgrade")["revision"]
    assert revision
    info = fresh.json("info")
    assert info["schema_revision"] == revision
    assert info["user"] == "tester"
    assert info["database"] == f"sqlite:///{fresh.home / 'registry.db'}"
    assert info["mode"] == "embedded"
    assert Path(info["artifacts"]) == (fresh.home / "blobs").resolve()


def test_gates_refuse_then_override_and_compare_shows_the_verdict(
    fresh: Cli, tmp_path: Path
) -> None:
    for version, auc in ((1, "0.93"), (2, "0.80")):
        model = write_files(tmp_path / f"m{version}", {"model.bin": f"w{version}".encode()})
        fresh.ok("register", "fraud", str(model), "--metric", f"auc={auc}")
        fresh.ok("transition", f"fraud/{version}", "staging")
    fresh.ok("transition", "fraud/1", "production")
    policy = tmp_path / "gates.yaml"
    policy.write_text("production:\n  rules:\n    - auc >= production.auc - 0.005\n")
    assert "revision 1" in fresh.ok("gates", "set", str(policy))
    assert "auc >= production.auc - 0.005" in fresh.ok("gates", "show")
    check = fresh.run("gates", "check", "fraud/2", "production")
    assert check.returncode == 1
    assert "FAIL" in check.stdout
    compared = fresh.ok("compare", "fraud/2", "fraud@production")
    assert "gate: production" in compared
    assert "needs >= 0.925" in compared
    verdict = fresh.json("compare", "fraud/2", "fraud@production")["gate"]
    assert (verdict["candidate"], verdict["passed"]) == ("fraud/2", False)
    error = fresh.fail("transition", "fraud/2", "production", code="POLICY_VIOLATION")
    assert "auc = 0.8, needs >= 0.925" in error
    fresh.fail("transition", "fraud/2", "production", "--override", code="INVALID_ARGUMENT")
    fresh.ok("transition", "fraud/2", "production", "--override", "--reason", "hotfix")
    bad = tmp_path / "bad.yaml"
    bad.write_text("production:\n  rules: ['auc >= import os']\n")
    fresh.fail("gates", "set", str(bad), code="INVALID_ARGUMENT")


def test_events_environments_deployments_and_webhooks(fresh: Cli, tmp_path: Path) -> None:
    model = write_files(tmp_path / "m", {"model.bin": b"w"})
    fresh.ok("register", "fraud", str(model))
    fresh.ok("env", "create", "prod-eu", "--description", "Frankfurt")
    assert "prod-eu" in fresh.ok("env", "list")
    fresh.ok("deploy", "record", "fraud/1", "prod-eu", "--note", "rollout 1")
    where = fresh.json("deploy", "where", "--env", "prod-eu")["items"]
    assert [(d["ref"], d["status"]) for d in where] == [("fraud/1", "deployed")]
    assert "rollout 1" in fresh.ok("deploy", "log", "--model", "fraud")
    fresh.fail("deploy", "record", "fraud/1", "mars", code="NOT_FOUND")
    feed = fresh.json("events", "list", "--model", "fraud")
    kinds = [e["kind"] for e in feed["events"]]
    assert kinds == ["model_created", "version_registered", "deployment_recorded"]
    watched = fresh.run("events", "watch", "--after", "0", "--count", "3", "--json")
    assert watched.returncode == 0, watched.stderr
    lines = [json.loads(line) for line in watched.stdout.splitlines()]
    assert [e["kind"] for e in lines] == kinds
    added = fresh.json("webhooks", "add", "https://hooks.example/x", "--kind", "stage_changed")
    assert added["secret"].startswith("whsec_")
    listed = fresh.json("webhooks", "list")["items"]
    assert [(w["id"], w["secret"]) for w in listed] == [(added["id"], None)]
    assert fresh.json("webhooks", "deliveries", str(added["id"]))["items"] == []
    fresh.ok("webhooks", "rm", str(added["id"]))
    fresh.fail("webhooks", "test", str(added["id"]), code="NOT_FOUND")


def test_register_external_records_files_in_place(fresh: Cli, tmp_path: Path) -> None:
    model = write_files(tmp_path / "m", {"w.bin": b"weights in place"})
    version = fresh.json("register", "kept", str(model), "--external")
    (entry,) = version["files"]
    assert entry["source"] == (model / "w.bin").resolve().as_uri()
    assert list((fresh.home / "blobs" / "sha256").iterdir()) == []
    fresh.ok("pull", "kept/1", str(tmp_path / "out"))
    assert (tmp_path / "out" / "w.bin").read_bytes() == b"weights in place"
    (model / "w.bin").write_bytes(b"weights changed!")
    result = fresh.run("verify")
    assert result.returncode == 1
    assert f"{entry['source']} changed" in result.stdout
    assert "1 external file" in result.stdout
    fresh.fail("pull", "kept/1", str(tmp_path / "again"), code="INTEGRITY_ERROR")
    fresh.fail("register", "kept", "ftp://host/w.bin", code="INVALID_ARGUMENT")
