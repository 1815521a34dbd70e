"""Contract: environments and deployment records, "what runs where" in one query."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg import errors
from modelreg.protocol import Registry


@pytest.fixture
def fleet(reg: Registry, model_dir: Callable[..., Path]) -> Registry:
    for seed in "ab":
        reg.register("fraud", model_dir(seed))
    reg.register("churn", model_dir("c"))
    for name in ("prod-eu", "prod-us", "shadow"):
        reg.create_environment(name, description=f"the {name} cluster")
    return reg


def test_environments_are_created_once_and_listed(fleet: Registry) -> None:
    names = [e.name for e in fleet.list_environments().all()]
    assert names == ["shadow", "prod-us", "prod-eu"]
    env = fleet.list_environments().items[-1]
    assert (env.description, env.created_by) == ("the prod-eu cluster", "alice")
    with pytest.raises(errors.AlreadyExists):
        fleet.create_environment("prod-eu")
    for bad in ("Prod", "-x", "", "a" * 65, "prod eu"):
        with pytest.raises(errors.InvalidName):
            fleet.create_environment(bad)


def test_what_runs_where_is_the_newest_record_per_environment_and_model(
    fleet: Registry,
) -> None:
    fleet.record_deployment("fraud/1", "prod-eu")
    fleet.record_deployment("fraud/1", "prod-us")
    fleet.record_deployment("fraud/2", "shadow", note="shadow traffic")
    fleet.record_deployment("fraud/2", "prod-eu", status="deploying")
    fleet.record_deployment("fraud/2", "prod-eu")
    fleet.record_deployment("churn/1", "prod-eu")
    fleet.record_deployment("fraud/2", "prod-us", status="failed", note="OOM on start")

    where = {(d.environment, d.name): (d.version, d.status) for d in fleet.list_deployments()}
    assert where == {
        ("prod-eu", "fraud"): (2, "deployed"),
        ("prod-us", "fraud"): (2, "failed"),
        ("shadow", "fraud"): (2, "deployed"),
        ("prod-eu", "churn"): (1, "deployed"),
    }
    fraud_eu = fleet.list_deployments(model="fraud", environment="prod-eu").items
    assert [(d.ref, d.deployed_by) for d in fraud_eu] == [("fraud/2", "alice")]
    assert fraud_eu[0].manifest_digest == fleet.get("fraud/2").manifest_digest
    log = list(fleet.list_deployments(model="fraud", current=False, page_size=2).all())
    assert [(d.environment, d.version, d.status) for d in log] == [
        ("prod-us", 2, "failed"),
        ("prod-eu", 2, "deployed"),
        ("prod-eu", 2, "deploying"),
        ("shadow", 2, "deployed"),
        ("prod-us", 1, "deployed"),
        ("prod-eu", 1, "deployed"),
    ]
    assert log[0].note == "OOM on start"
    assert [d.ref for d in fleet.list_deployments(environment="shadow")] == ["fraud/2"]


def test_recording_a_deployment_is_an_event(fleet: Registry) -> None:
    fleet.transition("fraud/1", "staging")
    fleet.transition("fraud/1", "production")
    recorded = fleet.record_deployment("fraud@production", "prod-eu", note="rollout 42")
    event = [e for e in fleet.history("fraud").all()][-1]
    assert (event.kind, event.version, event.reason) == ("deployment_recorded", 1, "rollout 42")
    assert event.details == {
        "environment": "prod-eu",
        "status": "deployed",
        "deployment_id": recorded.id,
    }


def test_bad_deployments_are_refused_and_nothing_is_recorded(fleet: Registry) -> None:
    with pytest.raises(errors.NotFound, match="environment 'mars' does not exist"):
        fleet.record_deployment("fraud/1", "mars")
    with pytest.raises(errors.NotFound):
        fleet.record_deployment("fraud/9", "prod-eu")
    with pytest.raises(errors.NotFound):
        fleet.record_deployment("fraud@production", "prod-eu")
    with pytest.raises(errors.InvalidArgument, match="invalid deployment status"):
        fleet.record_deployment("fraud/1", "prod-eu", status="running")
    with pytest.raises(errors.InvalidReference):
        fleet.record_deployment("fraud", "prod-eu")
    with pytest.raises(errors.NotFound):
        fleet.list_deployments(environment="mars")
    assert fleet.list_deployments(current=False).items == []
    assert not [e for e in fleet.history("fraud").all() if e.kind == "deployment_recorded"]
