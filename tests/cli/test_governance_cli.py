"""Governance commands run end to end as real processes against an embedded registry.

Authorization is off in embedded mode, so every user may do everything; separation of
duties still holds, and ``MODELREG_USER`` switches who acts. Token commands that need a
server are in tests/server/test_governance_cli_server.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from modelreg.client.credentials import forget_token, load_token, save_token
from modelreg.config import Config
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import InvalidArgument, Unauthenticated

if TYPE_CHECKING:  # mypy names this folder's modules cli.*; pytest imports them flat
    from cli.test_cli import Cli
else:
    from test_cli import Cli


@dataclass(frozen=True)
class As(Cli):
    """The CLI acting as ``user``."""

    user: str = "tester"

    def run(
        self, *args: str, command: Sequence[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
        env.update(
            MODELREG_HOME=str(self.home),
            MODELREG_USER=self.user,
            MODELREG_FSYNC="false",
            COLUMNS="200",
        )
        return subprocess.run(
            [*(command or [sys.executable, "-m", "modelreg.cli"]), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def acting(self, user: str) -> As:
        return replace(self, user=user)


@pytest.fixture
def cli(tmp_path: Path) -> As:
    """A fresh registry, acting as 'root' (the host's administrator)."""
    return As(tmp_path / "home", user="root")


def open_registry(home: Path) -> EmbeddedRegistry:
    return EmbeddedRegistry(Config.load(env={}, home=str(home), fsync="false"))


def register_in_staging(cli: As, tmp_path: Path, name: str = "fraud") -> None:
    model = tmp_path / f"{name}.bin"
    model.write_bytes(b"weights")
    cli.ok("register", name, str(model))
    cli.ok("transition", f"{name}/1", "staging")


# ---------------------------------------------------------------- principals


def test_bootstrap_prints_a_token_that_authenticates_as_a_global_admin(cli: As) -> None:
    result = cli.run("admin", "bootstrap", "alice")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert result.stdout == secret + "\n"  # the secret alone, ready for $(…)
    assert "will not be shown again" in result.stderr
    with open_registry(cli.home) as registry:
        principal = registry.service.authenticate(secret)
    assert principal.name == "alice"
    assert principal.role_on_all() == "admin"

    tokens = cli.json("token", "list", "--principal", "alice")
    assert [(t["name"], t["created_by"]) for t in tokens] == [("bootstrap", "root")]


def test_bootstrap_again_changes_nothing_unless_forced(cli: As) -> None:
    first = cli.ok("admin", "bootstrap", "alice").strip()
    error = cli.fail("admin", "bootstrap", "alice", code="CONFLICT")
    assert "already an admin" in error
    assert first not in error
    assert len(cli.json("token", "list", "--principal", "alice")) == 1

    cli.ok("principal", "disable", "alice")
    created = cli.json("admin", "bootstrap", "alice", "--force")
    assert created["token"] != first
    assert created["name"] == "bootstrap"
    shown = cli.json("principal", "show", "alice")
    assert shown["disabled"] is False
    assert [(g["role"], g["model"]) for g in shown["grants"]] == [("admin", "*")]
    assert len(cli.json("token", "list", "--principal", "alice")) == 2


def test_bootstrap_with_a_bad_lifetime_creates_nothing(cli: As) -> None:
    for lifetime in ("soon", "0", "3650d"):
        cli.fail("admin", "bootstrap", "alice", "--expires", lifetime, code="INVALID_ARGUMENT")
    cli.fail("principal", "show", "alice", code="NOT_FOUND")
    created = cli.json("admin", "bootstrap", "alice", "--expires", "1d")
    assert created["expires_at"] is not None


def test_bootstrap_refuses_an_existing_principal_without_force(cli: As) -> None:
    cli.ok("principal", "create", "bob")
    assert "already exists" in cli.fail("admin", "bootstrap", "bob", code="CONFLICT")
    assert cli.json("grant", "list", "bob") == []


def test_principals_are_created_listed_disabled_and_enabled(cli: As) -> None:
    created = cli.json("principal", "create", "ci", "--service", "--description", "nightly")
    assert (created["kind"], created["description"], created["disabled"]) == (
        "service",
        "nightly",
        False,
    )
    cli.ok("principal", "create", "bob")
    assert [p["name"] for p in cli.json("principal", "list")] == ["bob", "ci"]
    assert cli.json("principal", "disable", "bob")["disabled"] is True
    assert "disabled" in cli.ok("principal", "list")
    assert cli.json("principal", "enable", "bob")["disabled"] is False
    cli.fail("principal", "create", "bob", code="ALREADY_EXISTS")
    cli.fail("principal", "show", "nobody", code="NOT_FOUND")


def test_whoami_in_embedded_mode(cli: As) -> None:
    me = cli.acting("ana").json("whoami")
    assert me == {"name": "ana", "kind": "user", "authorization": "off", "grants": None}
    assert "every permission" in cli.acting("ana").ok("whoami")


def test_grant_add_replace_list_and_remove(cli: As) -> None:
    cli.ok("principal", "create", "bob")
    cli.ok("principal", "create", "carol")
    assert "bob is contributor on fraud-*" in cli.ok(
        "grant", "add", "bob", "contributor", "--model", "fraud-*"
    )
    cli.ok("grant", "add", "carol", "viewer")  # --model defaults to every model
    replaced = cli.json("grant", "add", "bob", "reviewer", "--model", "fraud-*")
    assert (replaced["role"], replaced["created_by"]) == ("reviewer", "root")

    every = cli.json("grant", "list")
    assert [(g["principal"], g["role"], g["model"]) for g in every] == [
        ("bob", "reviewer", "fraud-*"),
        ("carol", "viewer", "*"),
    ]
    table = cli.ok("grant", "list", "bob")
    assert "reviewer" in table
    assert "carol" not in table

    cli.ok("grant", "rm", "bob", "--model", "fraud-*")
    assert cli.json("grant", "list", "bob") == []
    cli.fail("grant", "rm", "bob", "--model", "fraud-*", code="NOT_FOUND")


# -------------------------------------------------------------------- tokens


def test_token_secret_is_printed_once_and_never_listed(cli: As) -> None:
    cli.ok("principal", "create", "bob")
    created = cli.json("token", "create", "--principal", "bob", "--name", "ci", "--expires", "30d")
    secret = created["token"]
    assert secret.startswith("mrt_")
    assert (created["principal"], created["name"], created["revoked_at"]) == ("bob", "ci", None)
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(days=29) < lifetime <= timedelta(days=30)

    listed_text = cli.ok("token", "list", "--principal", "bob")
    listed_json = cli.run("token", "list", "--principal", "bob", "--json").stdout
    assert created["id"] in listed_text
    for listing in (listed_text, listed_json):
        assert secret not in listing
        assert secret.split("_")[-1] not in listing
    assert all("token" not in t for t in json.loads(listed_json))

    revoked = cli.json("token", "revoke", created["id"])
    assert revoked["revoked_by"] == "root"
    with open_registry(cli.home) as registry, pytest.raises(Unauthenticated):
        registry.service.authenticate(secret)


def test_token_create_without_principal_is_the_callers_own(cli: As) -> None:
    cli.ok("principal", "create", "ana")
    result = cli.acting("ana").run("token", "create")
    assert result.returncode == 0, result.stderr
    assert "token" in result.stderr
    assert "for ana" in result.stderr
    with open_registry(cli.home) as registry:
        assert registry.service.authenticate(result.stdout.strip()).name == "ana"


def test_admin_token_recovers_access_for_any_principal(cli: As) -> None:
    cli.ok("principal", "create", "ci", "--service")
    created = cli.json("admin", "token", "ci", "--name", "recovery", "--expires", "12h")
    assert (created["principal"], created["name"]) == ("ci", "recovery")
    with open_registry(cli.home) as registry:
        assert registry.service.authenticate(created["token"]).kind == "service"


# ------------------------------------------------------------------ requests


def test_request_is_applied_by_another_principals_approval(cli: As, tmp_path: Path) -> None:
    ana, carol = cli.acting("ana"), cli.acting("carol")
    register_in_staging(ana, tmp_path)
    request = ana.json("request", "create", "fraud/1", "production", "--reason", "beats v0")
    assert (request["status"], request["from_stage"], request["to_stage"]) == (
        "open",
        "staging",
        "production",
    )
    rid = str(request["id"])

    denied = ana.fail("request", "approve", rid, code="PERMISSION_DENIED")
    assert "requested this transition" in denied
    assert [r["id"] for r in cli.json("request", "list")] == [request["id"]]
    assert cli.ok("resolve", "fraud@staging") == "fraud/1\n"

    assert "is now in production" in carol.ok("request", "approve", rid, "--comment", "lgtm")
    assert cli.ok("resolve", "fraud@production") == "fraud/1\n"
    shown = cli.json("request", "show", rid)
    assert shown["status"] == "applied"
    assert [(a["approver"], a["comment"]) for a in shown["approvals"]] == [("carol", "lgtm")]
    assert cli.json("request", "list") == []
    assert [r["status"] for r in cli.json("request", "list", "--status", "applied")] == ["applied"]
    carol.fail("request", "approve", rid, code="CONFLICT")


def test_reject_needs_a_comment_and_cancel_withdraws(cli: As, tmp_path: Path) -> None:
    ana, carol = cli.acting("ana"), cli.acting("carol")
    register_in_staging(ana, tmp_path)
    first = str(ana.json("request", "create", "fraud/1", "production", "-r", "try")["id"])

    assert "comment" in carol.fail("request", "reject", first, code="INVALID_ARGUMENT")
    assert cli.json("request", "show", first)["status"] == "open"
    rejected = carol.json("request", "reject", first, "--comment", "needs a holdout run")
    assert (rejected["status"], rejected["decided_by"], rejected["comment"]) == (
        "rejected",
        "carol",
        "needs a holdout run",
    )

    second = str(ana.json("request", "create", "fraud/1", "production", "-r", "again")["id"])
    assert "cancelled by ana" in ana.ok("request", "cancel", second)
    statuses = [r["status"] for r in cli.json("request", "list", "--status", "any")]
    assert statuses == ["rejected", "cancelled"]
    assert cli.json("request", "list", "--model", "other", "--status", "any") == []
    assert cli.ok("resolve", "fraud@staging") == "fraud/1\n"
    cli.fail("request", "list", "--status", "done", code="INVALID_ARGUMENT")
    cli.fail("request", "show", "99", code="NOT_FOUND")


def test_request_create_needs_a_reason(cli: As, tmp_path: Path) -> None:
    register_in_staging(cli, tmp_path)
    cli.fail("request", "create", "fraud/1", "production", code="INVALID_ARGUMENT")
    assert cli.json("request", "list", "--status", "any") == []


# ------------------------------------------------------------------ policies


def test_policy_set_from_a_json_file_then_show(cli: As, tmp_path: Path) -> None:
    registry_default = cli.json("policy", "show")
    assert registry_default["stages"]["production"] == {"role": "reviewer", "approvals": 1}

    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"stages": {"production": {"role": "admin", "approvals": 2}}}))
    assert "protected stages production" in cli.ok("policy", "set", str(strict), "--model", "fraud")
    in_force = cli.json("policy", "show", "--model", "fraud")
    assert in_force["stages"]["production"] == {"role": "admin", "approvals": 2}
    assert in_force["stages"]["staging"] == registry_default["stages"]["staging"]
    assert cli.json("policy", "show") == registry_default
    assert "2 (protected)" in cli.ok("policy", "show", "--model", "fraud")

    cli.ok("policy", "rm", "--model", "fraud")
    assert cli.json("policy", "show", "--model", "fraud") == registry_default

    open_archive = tmp_path / "registry.json"
    open_archive.write_text(json.dumps({"stages": {"archived": {"role": "contributor"}}}))
    cli.json("policy", "set", str(open_archive))
    assert cli.json("policy", "show")["stages"] == {
        "archived": {"role": "contributor", "approvals": 0}
    }


def test_malformed_policy_files_change_nothing(cli: As, tmp_path: Path) -> None:
    before = cli.json("policy", "show")
    broken = tmp_path / "broken.json"
    broken.write_text('{"stages": ')
    assert "not valid JSON" in cli.fail("policy", "set", str(broken), code="INVALID_ARGUMENT")
    weak = tmp_path / "weak.json"
    weak.write_text(json.dumps({"stages": {"production": {"role": "viewer", "approvals": 1}}}))
    assert "reviewer or admin" in cli.fail("policy", "set", str(weak), code="INVALID_ARGUMENT")
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"stages": {}, "owner": "me"}))
    cli.fail("policy", "set", str(extra), code="INVALID_ARGUMENT")
    cli.fail("policy", "set", str(tmp_path / "missing.json"), code="INVALID_ARGUMENT")
    assert cli.json("policy", "show") == before


# --------------------------------------------------------------------- audit


def test_audit_log_lists_the_changes_oldest_first(cli: As, tmp_path: Path) -> None:
    cli.ok("principal", "create", "bob")
    cli.ok("grant", "add", "bob", "reviewer", "--model", "fraud")
    cli.ok("grant", "rm", "bob", "--model", "fraud")
    register_in_staging(cli.acting("ana"), tmp_path)

    records = cli.json("audit", "log")
    kinds = [r["kind"] for r in records]
    assert kinds[:3] == ["principal_created", "grant_set", "grant_revoked"]
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)
    granted = records[1]
    assert (granted["actor"], granted["details"]["principal"]) == ("root", "bob")
    assert granted["details"]["after"] == "reviewer"

    assert {r["actor"] for r in cli.json("audit", "log", "--principal", "ana")} == {"ana"}
    assert [r["kind"] for r in cli.json("audit", "log", "--kind", "grant_revoked")] == [
        "grant_revoked"
    ]
    assert {r["name"] for r in cli.json("audit", "log", "--model", "fraud")} == {"fraud"}
    assert len(cli.json("audit", "log", "--limit", "2")) == 2
    assert cli.json("audit", "log", "--since", "2999-01-01T00:00:00Z") == []
    assert len(cli.json("audit", "log", "--until", "2999-01-01")) == len(records)

    table = cli.ok("audit", "log")
    assert "grant_revoked" in table
    assert "staging" in table
    cli.fail("audit", "log", "--since", "yesterday", code="INVALID_ARGUMENT")


def test_audit_verify_names_an_edited_record(cli: As) -> None:
    cli.ok("principal", "create", "bob")
    cli.ok("grant", "add", "bob", "viewer")
    cli.ok("principal", "disable", "bob")

    intact = cli.run("audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.startswith("audit chain intact: 3 records, head 3:")
    report = cli.json("audit", "verify")
    assert (report["ok"], report["records"], report["head_seq"]) == (True, 3, 3)
    anchor = f"{report['head_seq']}:{report['head_hash']}"
    assert anchor in intact.stdout
    cli.ok("audit", "verify", "--anchor", anchor)
    cli.fail("audit", "verify", "--anchor", "three", code="INVALID_ARGUMENT")

    with sqlite3.connect(cli.home / "registry.db") as db:
        db.execute("UPDATE events SET reason = 'x' WHERE id = 2")
    broken = cli.run("audit", "verify")
    assert broken.returncode == 1, broken.stderr
    assert broken.stdout.startswith("audit chain broken at record 2: ")
    assert "edited" in broken.stdout
    as_json = cli.run("audit", "verify", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["first_bad"] == 2


def test_audit_verify_fails_on_a_stale_anchor(cli: As) -> None:
    cli.ok("principal", "create", "bob")
    report = cli.json("audit", "verify")
    result = cli.run("audit", "verify", "--anchor", f"{report['head_seq']}:{'0' * 64}")
    assert result.returncode == 1
    assert result.stdout.startswith("audit chain broken at record 1: ")


# ----------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_an_error_code(cli: As) -> None:
    cli.ok("principal", "create", "bob")
    assert "unknown role" in cli.fail("grant", "add", "bob", "owner", code="INVALID_ARGUMENT")
    cli.fail("grant", "add", "bob", "viewer", "--model", "fr*ud", code="INVALID_ARGUMENT")
    assert "duration" in cli.fail(
        "token", "create", "--principal", "bob", "--expires", "soon", code="INVALID_ARGUMENT"
    )
    cli.fail("token", "create", "--expires", "0", code="INVALID_ARGUMENT")
    cli.fail("token", "revoke", "not-an-id", code="INVALID_ARGUMENT")
    assert cli.json("token", "list", "--principal", "bob") == []
    assert cli.json("grant", "list", "bob") == []


def test_login_and_host_commands_check_the_uri(cli: As, tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'other.db'}"
    error = cli.fail("--uri", sqlite, "login", "--token", "mrt_x_y", code="INVALID_ARGUMENT")
    assert "needs a server" in error
    cli.fail("login", "--token", "mrt_x_y", code="INVALID_ARGUMENT")
    cli.fail("logout", code="INVALID_ARGUMENT")
    assert not (cli.home / "credentials.json").exists()
    for command in (("admin", "bootstrap", "alice"), ("admin", "token", "alice")):
        error = cli.fail("--uri", "http://127.0.0.1:9", *command, code="INVALID_ARGUMENT")
        assert "on the server host" in error


# --------------------------------------------------------------- credentials


def test_credentials_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "credentials.json"
    assert load_token(path, "http://a:8080") is None
    save_token(path, "http://a:8080/", "mrt_1")
    save_token(path, "https://b", "mrt_2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(path, "http://a:8080") == "mrt_1"
    assert json.loads(path.read_text()) == {
        "http://a:8080": {"token": "mrt_1"},
        "https://b": {"token": "mrt_2"},
    }
    save_token(path, "http://a:8080", "mrt_3")
    assert load_token(path, "http://a:8080/") == "mrt_3"
    assert forget_token(path, "http://a:8080") is True
    assert forget_token(path, "http://a:8080") is False
    assert load_token(path, "http://a:8080") is None
    assert load_token(path, "https://b") == "mrt_2"
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]


def test_credentials_file_that_is_not_json_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("token=abc")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        load_token(path, "http://a")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        save_token(path, "http://a", "mrt_1")
    assert path.read_text() == "token=abc"
    path.write_text("[]")
    with pytest.raises(InvalidArgument, match="JSON object"):
        load_token(path, "http://a")
