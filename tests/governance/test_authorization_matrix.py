"""Every endpoint, for every kind of caller → the expected status.

The table below is checked against the server's route table (its OpenAPI document): an
endpoint without a row fails the test, so no route ships without an authorization rule.
A refusal must change nothing: the audit chain's head, which every change moves, stays put.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from modelreg.domain.lifecycle import DEFAULT_LIFECYCLE

if TYPE_CHECKING:  # mypy names this folder's modules governance.*; pytest imports them flat
    from governance.govkit import Org, app_over, build_org, client_for
else:
    from govkit import Org, app_over, build_org, client_for

ANON = "anonymous"
CALLERS = (ANON, "viewer", "contributor", "reviewer", "admin", "pipeline", "outsider")
AUTHENTICATED = frozenset(CALLERS) - {ANON}
READERS = frozenset({"viewer", "contributor", "reviewer", "admin", "pipeline"})
WRITERS = frozenset({"contributor", "reviewer", "admin", "pipeline"})
REVIEWERS = frozenset({"reviewer", "admin", "pipeline"})
UPLOADERS = WRITERS | {"outsider"}
ADMIN = frozenset({"admin"})
NEW_BLOB = b"a blob nobody has stored yet"


@dataclass(frozen=True)
class Rule:
    """Who succeeds (with ``ok``); everyone else gets 403, or the ``other`` status."""

    allowed: frozenset[str]
    ok: int = 200
    path: str | None = None  # the concrete path, when the template has parameters
    body: Any = None
    content: bytes | None = None
    other: dict[str, int] = field(default_factory=dict)

    def expected(self, caller: str) -> int:
        if caller in self.allowed:
            return self.ok
        if caller in self.other:
            return self.other[caller]
        return 401 if caller == ANON else 403


def _rules(org: Org) -> dict[str, Rule]:
    req = f"/api/v1/requests/{org.request_id}"
    hidden = {"outsider": 404}  # requests of unreadable models look absent
    fraud_v1 = {"path": "fraud.bin", "size": 16, "sha256": org.fraud_blob}
    lifecycle = DEFAULT_LIFECYCLE.to_dict()
    policy = {"stages": {"production": {"role": "reviewer", "approvals": 2}}}
    new_blob = hashlib.sha256(NEW_BLOB).hexdigest()
    gates = {"gates": {"production": {"rules": ["auc >= 0.5"]}}}
    hook = f"/api/v1/webhooks/{org.webhook_id}"
    return {
        "GET /healthz": Rule(frozenset(CALLERS)),
        "GET /readyz": Rule(frozenset(CALLERS)),
        "GET /metrics": Rule(frozenset(CALLERS)),
        "GET /api/v1/info": Rule(AUTHENTICATED),
        "GET /api/v1/whoami": Rule(AUTHENTICATED),
        "GET /api/v1/lifecycle": Rule(AUTHENTICATED),
        "PUT /api/v1/lifecycle": Rule(ADMIN, body=lifecycle),
        "POST /api/v1/verify": Rule(ADMIN),
        "POST /api/v1/gc": Rule(ADMIN, body={"grace": "24h", "dry_run": True}),
        "GET /api/v1/models": Rule(AUTHENTICATED),
        "POST /api/v1/models": Rule(
            frozenset({"admin", "outsider"}), 201, body={"name": "other-new"}
        ),
        "GET /api/v1/models/{name}": Rule(READERS, path="/api/v1/models/fraud"),
        "PATCH /api/v1/models/{name}": Rule(
            WRITERS, path="/api/v1/models/fraud", body={"description": "d"}
        ),
        "DELETE /api/v1/models/{name}": Rule(ADMIN, 204, path="/api/v1/models/fraud"),
        "PATCH /api/v1/models/{name}/tags": Rule(
            WRITERS, 204, path="/api/v1/models/fraud/tags", body={"tags": {"k": "v"}}
        ),
        "DELETE /api/v1/models/{name}/tags/{key}": Rule(
            WRITERS, 204, path="/api/v1/models/fraud/tags/team"
        ),
        "PUT /api/v1/models/{name}/aliases/{alias}": Rule(
            WRITERS, path="/api/v1/models/fraud/aliases/best", body={"version": 2}
        ),
        "DELETE /api/v1/models/{name}/aliases/{alias}": Rule(
            WRITERS, 204, path="/api/v1/models/fraud/aliases/champion"
        ),
        "GET /api/v1/models/{name}/history": Rule(READERS, path="/api/v1/models/fraud/history"),
        "GET /api/v1/models/{name}/versions": Rule(READERS, path="/api/v1/models/fraud/versions"),
        "POST /api/v1/models/{name}/versions": Rule(
            WRITERS, 201, path="/api/v1/models/fraud/versions", body={"files": [fraud_v1]}
        ),
        "GET /api/v1/models/{name}/versions/{selector}": Rule(
            READERS, path="/api/v1/models/fraud/versions/1"
        ),
        "PATCH /api/v1/models/{name}/versions/{selector}": Rule(
            WRITERS, path="/api/v1/models/fraud/versions/1", body={"description": "d"}
        ),
        "DELETE /api/v1/models/{name}/versions/{selector}": Rule(
            REVIEWERS, 204, path="/api/v1/models/fraud/versions/2"
        ),
        # Production is protected: only the service account moves a version in directly.
        "POST /api/v1/models/{name}/versions/{selector}/transitions": Rule(
            frozenset({"pipeline"}),
            path="/api/v1/models/fraud/versions/1/transitions",
            body={"stage": "production", "reason": "r"},
        ),
        "PATCH /api/v1/models/{name}/versions/{selector}/tags": Rule(
            WRITERS, 204, path="/api/v1/models/fraud/versions/1/tags", body={"tags": {"k": "v"}}
        ),
        "DELETE /api/v1/models/{name}/versions/{selector}/tags/{key}": Rule(
            WRITERS, 204, path="/api/v1/models/fraud/versions/1/tags/checked"
        ),
        "GET /api/v1/versions": Rule(AUTHENTICATED),
        "GET /api/v1/resolve": Rule(READERS, path="/api/v1/resolve?ref=fraud@staging"),
        "GET /api/v1/compare": Rule(READERS, path="/api/v1/compare?a=fraud/1&b=fraud/2"),
        "POST /api/v1/blobs/missing": Rule(UPLOADERS, body={"sha256": [new_blob]}),
        "POST /api/v1/blobs/heads": Rule(
            UPLOADERS, body={"files": [{"size": len(NEW_BLOB), "head": new_blob}]}
        ),
        "POST /api/v1/blobs": Rule(UPLOADERS, 201, content=NEW_BLOB),
        "PUT /api/v1/blobs/{sha256}": Rule(
            UPLOADERS, 201, path=f"/api/v1/blobs/{new_blob}", content=NEW_BLOB
        ),
        # Local store: the link routes answer {"direct": false} to those allowed.
        "POST /api/v1/blobs/{sha256}/download-link": Rule(
            READERS, path=f"/api/v1/blobs/{org.fraud_blob}/download-link"
        ),
        "POST /api/v1/blobs/{sha256}/upload-link": Rule(
            UPLOADERS, path=f"/api/v1/blobs/{new_blob}/upload-link", body={"size": len(NEW_BLOB)}
        ),
        "POST /api/v1/blobs/{sha256}/finish-upload": Rule(
            UPLOADERS,
            400,
            path=f"/api/v1/blobs/{new_blob}/finish-upload",
            body={"upload_id": "nothing-uploaded", "size": len(NEW_BLOB)},
        ),
        "HEAD /api/v1/blobs/{sha256}": Rule(READERS, path=f"/api/v1/blobs/{org.fraud_blob}"),
        "GET /api/v1/blobs/{sha256}": Rule(READERS, path=f"/api/v1/blobs/{org.fraud_blob}"),
        "GET /api/v1/principals": Rule(ADMIN),
        "POST /api/v1/principals": Rule(ADMIN, 201, body={"name": "newcomer"}),
        "GET /api/v1/principals/{name}": Rule(
            frozenset({"viewer", "admin"}), path="/api/v1/principals/viewer"
        ),
        "PATCH /api/v1/principals/{name}": Rule(
            ADMIN, path="/api/v1/principals/viewer", body={"disabled": True}
        ),
        "PUT /api/v1/principals/{name}/grants": Rule(
            ADMIN, path="/api/v1/principals/viewer/grants", body={"role": "admin"}
        ),
        "DELETE /api/v1/principals/{name}/grants": Rule(
            ADMIN, 204, path="/api/v1/principals/viewer/grants?model=fraud"
        ),
        "POST /api/v1/tokens": Rule(AUTHENTICATED, 201, body={"name": "mine"}),
        "GET /api/v1/tokens": Rule(AUTHENTICATED),
        "DELETE /api/v1/tokens/{token_id}": Rule(
            ADMIN, path=f"/api/v1/tokens/{org.admin_token_id}"
        ),
        "GET /api/v1/policy": Rule(AUTHENTICATED),
        "PUT /api/v1/policy": Rule(ADMIN, body=policy),
        "GET /api/v1/models/{name}/policy": Rule(READERS, path="/api/v1/models/fraud/policy"),
        "PUT /api/v1/models/{name}/policy": Rule(
            ADMIN, path="/api/v1/models/fraud/policy", body=policy
        ),
        "DELETE /api/v1/models/{name}/policy": Rule(ADMIN, 204, path="/api/v1/models/fraud/policy"),
        "POST /api/v1/requests": Rule(
            WRITERS, 201, body={"ref": "fraud/2", "stage": "staging", "reason": "ready"}
        ),
        "GET /api/v1/requests": Rule(AUTHENTICATED),
        "GET /api/v1/requests/{request_id}": Rule(READERS, path=req, other=hidden),
        # The contributor opened the request: reviewers decide it, the requester cancels it.
        "POST /api/v1/requests/{request_id}/approve": Rule(
            REVIEWERS, path=f"{req}/approve", body={"comment": "ok"}, other=hidden
        ),
        "POST /api/v1/requests/{request_id}/reject": Rule(
            REVIEWERS, path=f"{req}/reject", body={"comment": "not yet"}, other=hidden
        ),
        "POST /api/v1/requests/{request_id}/cancel": Rule(
            frozenset({"contributor", "admin"}), path=f"{req}/cancel", body={}, other=hidden
        ),
        "GET /api/v1/gates": Rule(AUTHENTICATED),
        "PUT /api/v1/gates": Rule(ADMIN, body=gates),
        "GET /api/v1/models/{name}/gates": Rule(READERS, path="/api/v1/models/fraud/gates"),
        "PUT /api/v1/models/{name}/gates": Rule(
            ADMIN, path="/api/v1/models/fraud/gates", body=gates
        ),
        "GET /api/v1/gates/check": Rule(
            READERS, path="/api/v1/gates/check?ref=fraud/1&stage=production"
        ),
        # The feed answers everyone who is authenticated, with the events they may read.
        "GET /api/v1/events": Rule(AUTHENTICATED),
        "GET /api/v1/events/stream": Rule(AUTHENTICATED, path="/api/v1/events/stream?wait=0.1"),
        "POST /api/v1/webhooks": Rule(ADMIN, 201, body={"url": "http://127.0.0.1:9/other"}),
        "GET /api/v1/webhooks": Rule(ADMIN),
        "DELETE /api/v1/webhooks/{webhook_id}": Rule(ADMIN, 204, path=hook),
        "POST /api/v1/webhooks/{webhook_id}/test": Rule(ADMIN, path=f"{hook}/test"),
        "GET /api/v1/webhooks/{webhook_id}/deliveries": Rule(ADMIN, path=f"{hook}/deliveries"),
        "GET /api/v1/environments": Rule(AUTHENTICATED),
        "POST /api/v1/environments": Rule(ADMIN, 201, body={"name": "shadow"}),
        "POST /api/v1/deployments": Rule(
            REVIEWERS, 201, body={"ref": "fraud/1", "environment": "prod-eu"}
        ),
        "GET /api/v1/deployments": Rule(AUTHENTICATED),
        "GET /api/v1/audit": Rule(ADMIN),
        "POST /api/v1/audit/verify": Rule(ADMIN, body={}),
    }


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    return build_org(tmp_path_factory.mktemp("org"), tmp_path_factory.mktemp("files"))


@pytest.fixture(scope="module")
def shared_app(org: Org, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One app for the calls that change nothing."""
    app = app_over(org.copy(tmp_path_factory.mktemp("shared") / "registry"))
    yield app
    app.state.registry.close()


def _head(app: FastAPI) -> tuple[int, str]:
    with app.state.registry.db.read() as conn:
        row = conn.execute(sa.text("SELECT seq, hash FROM audit_head")).one()
    return int(row.seq), str(row.hash)


def _call(app: FastAPI, org: Org, route: str, rule: Rule, caller: str) -> int:
    method, template = route.split(" ", 1)
    headers = {} if caller == ANON else {"authorization": f"Bearer {org.tokens[caller]}"}
    with client_for(app) as client:
        response = client.request(
            method,
            rule.path or template,
            headers=headers,
            json=rule.body if rule.content is None else None,
            content=rule.content,
        )
    if response.status_code >= 400 and method != "HEAD":
        error = response.json()["error"]
        if response.status_code == 403:
            # The refusal says what is missing.
            assert "may not" in error["message"], error
            assert "needs" in error["message"], error
    return response.status_code


def test_every_route_has_a_rule(org: Org, shared_app: FastAPI) -> None:
    paths = shared_app.openapi()["paths"]
    routes = {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}
    assert sorted(routes - set(_rules(org))) == [], "routes without an authorization rule"
    assert sorted(set(_rules(org)) - routes) == [], "rules for routes that do not exist"


def _route_names() -> list[str]:
    # The rule table needs the org's ids; the names alone come from a placeholder org.
    placeholder = Org(Path("."), {}, 1, "0" * 16, "0" * 64, 1)
    return sorted(_rules(placeholder))


@pytest.mark.parametrize("route", _route_names())
def test_authorization_matrix(route: str, org: Org, shared_app: FastAPI, tmp_path: Path) -> None:
    rule = _rules(org)[route]
    read_only = route.split(" ", 1)[0] in ("GET", "HEAD")
    failures = []
    for caller in CALLERS:
        app = shared_app if read_only else app_over(org.copy(tmp_path / caller))
        try:
            before = _head(app)
            status = _call(app, org, route, rule, caller)
            expected = rule.expected(caller)
            if status != expected:
                failures.append(f"{caller}: {status}, expected {expected}")
            if status >= 400:
                assert _head(app) == before, f"{route} as {caller} changed state on {status}"
        finally:
            if app is not shared_app:
                app.state.registry.close()
    assert not failures, f"{route}: " + "; ".join(failures)
