"""``modelreg login``, ``logout`` and tokens against a real server with authentication on.

The host bootstraps the first admin on the server's database; a client with its own
home then talks to the server only through its URL and tokens.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelreg.cli.commands_server import resolve_auth

CONSOLE_SCRIPT = Path(sys.executable).with_name("modelreg")
StartServers = Callable[..., list[str]]


@dataclass(frozen=True)
class Cli:
    """The console script with its own MODELREG_HOME (and credentials file)."""

    home: Path

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
        env.update(MODELREG_HOME=str(self.home), MODELREG_FSYNC="false", COLUMNS="200")
        return subprocess.run(
            [str(CONSOLE_SCRIPT), *args],
            env=env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fail(self, *args: str, code: str) -> str:
        result = self.run(*args)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert result.stderr.startswith(f"error {code}: "), result.stderr
        return result.stderr


def test_login_saves_a_verified_token_and_logout_forgets_it(
    start_servers: StartServers, tmp_path: Path
) -> None:
    host = Cli(tmp_path / "server")
    admin_secret = host.ok("admin", "bootstrap", "alice").strip()
    (url,) = start_servers({"MODELREG_HOME": str(host.home), "MODELREG_AUTH": "on"})
    client = Cli(tmp_path / "client")
    credentials = client.home / "credentials.json"

    client.fail(
        "--uri", url, "login", "--token", "mrt_0000000000000000_nope", code="UNAUTHENTICATED"
    )
    assert not credentials.exists()

    assert "as alice" in client.ok("--uri", url, "login", "--token", admin_secret)
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text()) == {url: {"token": admin_secret}}

    # The admin makes a user and a token for it over HTTP; the secret never reappears.
    as_admin = ("--uri", url, "--token", admin_secret)
    client.ok(*as_admin, "principal", "create", "bob")
    client.ok(*as_admin, "grant", "add", "bob", "contributor", "--model", "fraud-*")
    created = client.json(*as_admin, "token", "create", "--principal", "bob", "--name", "laptop")
    bob_secret = created["token"]
    listing = client.run(*as_admin, "token", "list", "--principal", "bob", "--json").stdout
    assert bob_secret not in listing
    assert [t["id"] for t in json.loads(listing)] == [created["id"]]

    # Piped in, as a script would; the server answers with bob's own roles.
    client.ok("--uri", url + "/", "login", stdin=bob_secret + "\n")
    assert json.loads(credentials.read_text()) == {url: {"token": bob_secret}}
    me = client.json("--uri", url, "--token", bob_secret, "whoami")
    assert (me["name"], me["authorization"]) == ("bob", "on")
    assert me["grants"] == [{"role": "contributor", "model": "fraud-*"}]
    client.fail("--uri", url, "--token", bob_secret, "principal", "list", code="PERMISSION_DENIED")
    # Without --token or MODELREG_TOKEN, the token saved for the URL is used.
    assert client.json("--uri", url, "whoami")["name"] == "bob"

    client.ok(*as_admin, "token", "revoke", created["id"])
    error = client.fail("--uri", url, "login", "--token", bob_secret, code="UNAUTHENTICATED")
    assert "revoked" in error
    assert json.loads(credentials.read_text()) == {url: {"token": bob_secret}}

    assert "logged out" in client.ok("--uri", url, "logout")
    assert json.loads(credentials.read_text()) == {}
    client.fail("--uri", url, "whoami", code="UNAUTHENTICATED")
    assert "no token was saved" in client.ok("--uri", url, "logout")


def test_login_refuses_a_server_that_does_not_check_tokens(
    start_servers: StartServers, tmp_path: Path
) -> None:
    host = Cli(tmp_path / "server")
    secret = host.ok("admin", "bootstrap", "alice").strip()
    (url,) = start_servers({"MODELREG_HOME": str(host.home), "MODELREG_AUTH": "off"})
    client = Cli(tmp_path / "client")
    error = client.fail("--uri", url, "login", "--token", secret, code="INVALID_ARGUMENT")
    assert "authentication off" in error
    assert not (client.home / "credentials.json").exists()


@pytest.mark.parametrize(
    ("mode", "host", "expected"),
    [
        ("auto", "0.0.0.0", "on"),
        ("auto", "10.1.2.3", "on"),
        ("auto", "::", "on"),
        ("auto", "127.0.0.1", "off"),
        ("auto", "127.0.0.2", "off"),
        ("auto", "::1", "off"),
        ("auto", "localhost", "off"),
        ("on", "127.0.0.1", "on"),
        ("off", "0.0.0.0", "off"),
    ],
)
def test_auth_auto_is_on_unless_only_loopback_listens(mode: str, host: str, expected: str) -> None:
    assert resolve_auth(mode, host) == expected
