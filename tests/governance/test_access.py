"""Separation of duties, token lifetimes, and grants that do not leak across models, all
through the remote SDK against a server with authentication on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from modelreg import errors
from modelreg.client import RemoteRegistry
from modelreg.service.events import utcnow
from modelreg.store import tables as t

if TYPE_CHECKING:
    from governance.govkit import Org, app_over, build_org, client_for, sdk
else:
    from govkit import Org, app_over, build_org, client_for, sdk


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Org:
    return build_org(tmp_path_factory.mktemp("org"), tmp_path_factory.mktemp("files"))


@pytest.fixture
def app(template: Org, tmp_path: Path) -> Iterator[FastAPI]:
    served = app_over(template.copy(tmp_path / "registry"))
    yield served
    served.state.registry.close()


@pytest.fixture
def as_(app: FastAPI, template: Org) -> Iterator[dict[str, RemoteRegistry]]:
    clients = {name: sdk(app, token) for name, token in template.tokens.items()}
    yield clients
    for client in clients.values():
        client.close()


def _head(app: FastAPI) -> int:
    with app.state.registry.db.read() as conn:
        return int(conn.execute(sa.select(t.audit_head.c.seq)).scalar_one())


def test_request_approve_apply(as_: dict[str, RemoteRegistry], template: Org) -> None:
    reviewer, contributor = as_["reviewer"], as_["contributor"]
    contributor.transition("fraud/2", "staging", reason="staging is open to contributors")
    mine = reviewer.request_transition("fraud/2", "production", reason="my own model")
    with pytest.raises(errors.PermissionDenied, match="other than the requester"):
        reviewer.approve_request(mine.id)
    with pytest.raises(errors.PermissionDenied, match="reviewer role"):
        contributor.approve_request(mine.id)
    applied = as_["admin"].approve_request(mine.id, comment="looked at the holdout")
    assert applied.status == "applied"
    assert [a.approver for a in applied.approvals] == ["admin"]
    assert contributor.resolve("fraud@production").version == 2
    history = [e for e in contributor.history("fraud", version=2).all()]
    kinds = [e.kind for e in history]
    assert kinds[-3:] == ["transition_requested", "transition_approved", "stage_changed"]
    moved = history[-1]
    assert moved.actor == "admin"
    assert moved.details["requested_by"] == "reviewer"
    assert moved.details["approved_by"] == ["admin"]
    assert moved.details["request"] == mine.id
    with pytest.raises(errors.Conflict, match="applied"):
        as_["pipeline"].approve_request(mine.id)


def test_two_approvals_and_direct_promotion_by_the_pipeline(
    as_: dict[str, RemoteRegistry],
) -> None:
    admin = as_["admin"]
    as_["contributor"].transition("fraud/2", "staging")
    admin.set_policy({"stages": {"production": {"role": "reviewer", "approvals": 2}}}, "fraud")
    request = as_["contributor"].request_transition("fraud/2", "production", reason="better")
    assert request.approvals_required == 2
    once = as_["reviewer"].approve_request(request.id)
    assert once.status == "open"
    with pytest.raises(errors.Conflict, match="already approved"):
        as_["reviewer"].approve_request(request.id)
    assert as_["viewer"].get("fraud/2").stage == "staging"  # nothing moved yet
    twice = admin.approve_request(request.id)
    assert twice.status == "applied"
    assert as_["viewer"].resolve("fraud@production").version == 2
    # The service account holding reviewer moves versions directly; a person may not.
    with pytest.raises(errors.PermissionDenied, match="protected stage"):
        as_["reviewer"].transition("fraud/1", "production")
    moved = as_["pipeline"].transition("fraud/1", "production", reason="nightly promotion")
    assert moved.stage == "production"


def test_reject_and_cancel(as_: dict[str, RemoteRegistry], template: Org) -> None:
    with pytest.raises(errors.InvalidArgument, match="comment"):
        as_["reviewer"].reject_request(template.request_id, comment=" ")
    rejected = as_["reviewer"].reject_request(template.request_id, comment="needs more data")
    assert (rejected.status, rejected.decided_by) == ("rejected", "reviewer")
    assert rejected.comment == "needs more data"
    again = as_["contributor"].request_transition("fraud/1", "production", reason="more data")
    with pytest.raises(errors.PermissionDenied, match="cancel"):
        as_["reviewer"].cancel_request(again.id)
    assert as_["contributor"].cancel_request(again.id).status == "cancelled"
    assert as_["viewer"].list_requests(model="fraud").items == []
    statuses = [r.status for r in as_["viewer"].list_requests(status=None).all()]
    assert statuses == ["rejected", "cancelled"]


def test_revoked_expired_and_disabled_are_refused_at_once(
    app: FastAPI, as_: dict[str, RemoteRegistry]
) -> None:
    admin = as_["admin"]
    fresh = admin.create_token("viewer", name="laptop", expires_in="1h")
    assert fresh.secret not in repr(fresh)
    with sdk(app, fresh.secret) as laptop:
        assert laptop.whoami()["name"] == "viewer"
        admin.revoke_token(fresh.info.id)
        with pytest.raises(errors.Unauthenticated, match="revoked"):
            laptop.get_model("fraud")
    listed = {t.id: t for t in admin.list_tokens("viewer")}
    assert listed[fresh.info.id].revoked_by == "admin"

    short = admin.create_token("viewer", expires_in=60)
    with app.state.registry.db.write() as conn:
        conn.execute(
            sa.update(t.tokens)
            .where(t.tokens.c.id == short.info.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with sdk(app, short.secret) as expired, pytest.raises(errors.Unauthenticated, match="expired"):
        expired.get_model("fraud")

    admin.disable_principal("viewer")
    with pytest.raises(errors.Unauthenticated, match="disabled"):
        as_["viewer"].get_model("fraud")
    admin.enable_principal("viewer")
    assert as_["viewer"].get_model("fraud").name == "fraud"


def test_a_per_model_grant_does_not_leak(
    app: FastAPI, as_: dict[str, RemoteRegistry], template: Org
) -> None:
    outsider, viewer = as_["outsider"], as_["viewer"]
    assert [m.name for m in outsider.search_models().all()] == ["other-x"]
    assert [m.name for m in viewer.search_models().all()] == ["fraud"]
    assert {m.name for m in as_["admin"].search_models().all()} == {"fraud", "other-x"}
    assert {v.name for v in outsider.search_versions("metrics.auc >= 0").all()} == set()
    assert {v.ref for v in outsider.search_versions().all()} == {"other-x/1"}
    assert outsider.list_requests(status=None).items == []
    for call in (
        lambda: outsider.history("fraud"),
        lambda: outsider.compare("other-x/1", "fraud/1"),
        lambda: outsider.get("fraud@champion"),
        lambda: outsider.list_versions("fraud"),
        lambda: outsider.get_model("no-such-model"),  # the same answer as for a real one
    ):
        with pytest.raises(errors.PermissionDenied):
            call()
    with pytest.raises(errors.NotFound):
        outsider.get_request(template.request_id)
    with client_for(app) as raw:
        auth = {"authorization": f"Bearer {template.tokens['outsider']}"}
        blob = raw.get(f"/api/v1/blobs/{template.fraud_blob}", headers=auth)
        assert blob.status_code == 403
        assert raw.get(f"/api/v1/blobs/{'0' * 64}", headers=auth).status_code == 403
    with pytest.raises(errors.PermissionDenied):
        outsider.pull("fraud/1", Path(app.state.registry.config.home) / "stolen")
    # Its own namespace is its own: a contributor on other-* registers and requests there.
    outsider.create_model("other-new")
    assert outsider.get_model("other-new").created_by == "outsider"


def test_bad_credentials_and_missing_permissions_change_nothing(
    app: FastAPI, as_: dict[str, RemoteRegistry], template: Org
) -> None:
    before = _head(app)
    for token in ("mrt_", "mrt_0123456789abcdef_" + "x" * 43, template.tokens["viewer"] + "x"):
        with sdk(app, token) as bad, pytest.raises(errors.Unauthenticated):
            bad.create_model("fraud-2")
    with pytest.raises(errors.PermissionDenied) as denied:
        as_["viewer"].set_tags("fraud", {"x": "y"})
    message = denied.value.message
    assert "viewer may not tag 'fraud'" in message
    assert "write permission (contributor role or higher)" in message
    assert denied.value.details["required_role"] == "contributor"
    with pytest.raises(errors.PermissionDenied, match="admin role"):
        as_["reviewer"].grant("reviewer", "admin")
    with pytest.raises(errors.PermissionDenied):
        as_["contributor"].create_token("admin")
    assert _head(app) == before


def test_gate_override_needs_an_admin_and_requests_meet_gates(
    as_: dict[str, RemoteRegistry],
) -> None:
    admin, contributor = as_["admin"], as_["contributor"]
    admin.set_gates({"staging": {"rules": ["auc >= 0.99"]}}, model="fraud")
    with pytest.raises(errors.PolicyViolation, match="auc"):
        contributor.transition("fraud/2", "staging")
    with pytest.raises(errors.PermissionDenied, match="override the promotion gate"):
        contributor.transition("fraud/2", "staging", override=True, reason="trust me")
    assert admin.get("fraud/2").stage == "development"
    moved = admin.transition("fraud/2", "staging", override=True, reason="known-good retrain")
    assert moved.stage == "staging"
    event = list(admin.history("fraud", version=2).all())[-1]
    assert event.details["gates"]["overridden"] is True
    # A request meets the gate of its stage when opened, and again when applied.
    admin.set_gates({"production": {"rules": ["auc >= 0.95"]}}, model="fraud")
    with pytest.raises(errors.PolicyViolation, match="auc"):
        contributor.request_transition("fraud/2", "production", reason="please")


def test_feed_and_deployments_are_scoped_to_readable_models(
    as_: dict[str, RemoteRegistry],
) -> None:
    as_["pipeline"].record_deployment("fraud/1", "prod-eu")
    outsider = as_["outsider"]
    with pytest.raises(errors.PermissionDenied, match="deploy permission"):
        as_["contributor"].record_deployment("fraud/1", "prod-eu")
    names = {e.name for e in outsider.events(after=0, limit=1000).events}
    assert names == {"other-x"}
    assert outsider.list_deployments().items == []
    assert [d.version for d in as_["viewer"].list_deployments().items] == [1]
    with pytest.raises(errors.PermissionDenied):
        outsider.events(model="fraud")
