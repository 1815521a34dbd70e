"""A registry with a small organisation in it, for the authorization tests.

``fraud`` belongs to a team with one principal per role; ``other-x`` to another team
(``outsider`` contributes to ``other-*``); ``pipeline`` is the team's service account.
Each principal has a token. The registry is built once as a folder, and each test that
changes state works on its own copy.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

from inprocess import InProcessTransport
from modelreg.auth.principal import Principal
from modelreg.client import RemoteRegistry
from modelreg.config import Config
from modelreg.embedded import EmbeddedRegistry
from modelreg.server import create_app

PRINCIPALS = ("viewer", "contributor", "reviewer", "admin", "pipeline", "outsider")
GRANTS = {
    "viewer": ("viewer", "fraud"),
    "contributor": ("contributor", "fraud"),
    "reviewer": ("reviewer", "fraud"),
    "admin": ("admin", "*"),
    "pipeline": ("reviewer", "fraud"),
    "outsider": ("contributor", "other-*"),
}
FRAUD_FILE = b"fraud weights v1"
OTHER_FILE = b"other team's weights"


@dataclass(frozen=True)
class Org:
    """The template registry's folder and what the tests need to know about it."""

    root: Path
    tokens: dict[str, str]
    request_id: int
    admin_token_id: str
    fraud_blob: str
    webhook_id: int

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.root, dest)
        return dest


def config_for(root: Path, *, auth: str = "on") -> Config:
    return Config.load(
        uri=f"sqlite:///{root / 'registry.db'}",
        artifacts=str(root / "blobs"),
        fsync="false",
        auth=auth,
    )


def app_over(root: Path) -> FastAPI:
    """The server app over a registry folder, authentication on."""
    return create_app(config_for(root))


def client_for(app: FastAPI) -> httpx.Client:
    """An httpx client that reaches ``app`` in this process."""
    return httpx.Client(transport=InProcessTransport(app), base_url="http://modelreg.test")


def build_org(root: Path, scratch: Path) -> Org:
    """Create the organisation's registry under ``root``."""
    host = EmbeddedRegistry(config_for(root, auth="off"))
    tokens: dict[str, str] = {}
    try:
        for name in PRINCIPALS:
            host.create_principal(name, kind="service" if name == "pipeline" else "user")
            role, pattern = GRANTS[name]
            host.grant(name, role, pattern)
            tokens[name] = host.create_token(name, name="tests").secret
        admin_token_id = host.list_tokens("admin")[0].id
        (scratch / "fraud.bin").write_bytes(FRAUD_FILE)
        (scratch / "other.bin").write_bytes(OTHER_FILE)
        v1 = host.register("fraud", scratch / "fraud.bin", metrics={"auc": 0.9})
        host.register("fraud", scratch / "fraud.bin", metrics={"auc": 0.92})
        host.register("other-x", scratch / "other.bin")
        host.transition("fraud/1", "staging")
        host.set_tags("fraud", {"team": "risk"})
        host.set_tags("fraud/1", {"checked": "yes"})
        host.set_alias("fraud", "champion", 1)
        host.set_policy({"stages": {"staging": {"role": "contributor", "approvals": 0}}}, "fraud")
        host.create_environment("prod-eu")
        # Port 9 (discard) refuses at once: test deliveries fail fast and stay local.
        webhook_id = host.create_webhook("http://127.0.0.1:9/hook").id
    finally:
        host.close()
    # The open request is the contributor's, so the requester is someone else than the
    # reviewers who decide it.
    as_contributor = EmbeddedRegistry(
        config_for(root, auth="off"), principal=Principal("contributor")
    )
    try:
        request = as_contributor.request_transition(
            "fraud/1", "production", reason="beats the baseline"
        )
    finally:
        as_contributor.close()
    return Org(root, tokens, request.id, admin_token_id, v1.files[0].sha256, webhook_id)


def sdk(app: FastAPI, token: str) -> RemoteRegistry:
    """The remote SDK over ``app``, acting as the token's principal."""
    client = httpx.Client(transport=InProcessTransport(app))
    return RemoteRegistry("http://modelreg.test", token=token, client=client)
