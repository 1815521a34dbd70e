"""How each registry entity looks in a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.text import Text

from modelreg.cli import output
from modelreg.domain.deployments import Deployment, Environment
from modelreg.domain.entities import (
    Comparison,
    GcReport,
    HistoryEvent,
    Model,
    ModelVersion,
    ValueDiff,
    VerifyReport,
)
from modelreg.domain.gates import GateEvaluation, GatePolicy
from modelreg.domain.lifecycle import Lifecycle
from modelreg.domain.webhooks import Webhook, WebhookDelivery


def _pairs(mapping: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items())


def models(items: Iterable[Model]) -> None:
    grid = output.table("name", "latest", "holders", "aliases", "description")
    for m in items:
        output.add_row(
            grid,
            [m.name, m.latest_version, _pairs(m.stage_holders), _pairs(m.aliases), m.description],
        )
    output.show(grid)


def model(m: Model) -> None:
    grid = output.table("field", "value")
    output.add_row(grid, ["name", m.name])
    output.add_row(grid, ["description", m.description])
    output.add_row(grid, ["latest", m.latest_version])
    output.add_row(grid, ["holders", _pairs(m.stage_holders)])
    output.add_row(grid, ["aliases", _pairs(m.aliases)])
    output.add_row(grid, ["tags", _pairs(m.tags)])
    output.add_row(grid, ["created", f"{output.when(m.created_at)} by {m.created_by}"])
    output.add_row(grid, ["updated", output.when(m.updated_at)])
    output.show(grid)


def versions(items: Iterable[ModelVersion]) -> None:
    grid = output.table(
        "ref",
        "stage",
        "aliases",
        "size",
        "created",
        "by",
        "description",
        no_wrap=("ref", "stage", "size", "created"),
    )
    for v in items:
        output.add_row(
            grid,
            [
                v.ref,
                v.stage,
                ", ".join(v.aliases),
                output.size(v.size),
                v.created_at,
                v.created_by,
                v.description,
            ],
        )
    output.show(grid)


def version(v: ModelVersion) -> None:
    head = output.table("field", "value", title=v.ref)
    output.add_row(head, ["stage", v.stage])
    output.add_row(head, ["aliases", ", ".join(v.aliases)])
    output.add_row(head, ["digest", v.manifest_digest])
    output.add_row(head, ["size", f"{output.size(v.size)} in {len(v.files)} files"])
    output.add_row(head, ["created", f"{output.when(v.created_at)} by {v.created_by}"])
    output.add_row(head, ["stage since", v.stage_changed_at])
    output.add_row(head, ["description", v.description])
    output.show(head)

    files = output.table("path", "size", "sha256", title="files")
    for f in v.files:
        output.add_row(files, [f.path, output.size(f.size), f.sha256])
    output.show(files)

    sections: list[tuple[str, Mapping[str, object]]] = [
        ("metrics", v.metrics),
        ("params", v.params),
        ("lineage", {k: x for k, x in v.lineage.to_dict().items() if x not in (None, [])}),
        ("tags", v.tags),
    ]
    for title, values in sections:
        if not values:
            continue
        grid = output.table("key", "value", title=title)
        for key, value in values.items():
            output.add_row(grid, [key, value])
        output.show(grid)


def _delta(diff: ValueDiff) -> Text:
    if diff.delta is None:
        return output.cell(None)
    if diff.delta > 0:
        return Text(f"+{diff.delta:.6g}", style="green")
    if diff.delta < 0:
        return Text(f"{diff.delta:.6g}", style="red")
    return Text("0")


def comparison(c: Comparison) -> None:
    a, b = c.a.ref, c.b.ref
    if c.metrics:
        grid = output.table("metric", a, b, "delta", title="metrics")
        for d in c.metrics:
            grid.add_row(output.cell(d.key), output.cell(d.a), output.cell(d.b), _delta(d))
        output.show(grid)
    for title, key, diffs in (("params", "param", c.params), ("lineage", "field", c.lineage)):
        changed = [d for d in diffs if d.a != d.b]
        if not changed:
            output.line(f"{title}: identical")
            continue
        grid = output.table(key, a, b, title=title)
        for d in changed:
            output.add_row(grid, [d.key, d.a, d.b])
        output.show(grid)
    if c.gate is not None:
        gate(c.gate)


_OUTCOME_STYLE = {"passed": "green", "failed": "red", "skipped": "dim"}


def gate(evaluation: GateEvaluation) -> None:
    """A gate evaluation: one row per rule with its values, then the verdict."""
    if not evaluation.results:
        output.line(f"no gate for {evaluation.stage}: {evaluation.candidate} may enter")
        return
    grid = output.table(
        "rule", "value", "bound", "baseline", "outcome", title=f"gate: {evaluation.stage}"
    )
    for r in evaluation.results:
        baseline = (
            f"{r.baseline_value:g} ({r.baseline})" if r.baseline_value is not None else r.baseline
        )
        grid.add_row(
            output.cell(r.rule),
            output.cell(r.value),
            output.cell(r.bound),
            output.cell(baseline),
            Text(r.outcome, style=_OUTCOME_STYLE.get(r.outcome, "")),
        )
    output.show(grid)
    verdict = "PASS" if evaluation.passed else "FAIL"
    style = "green" if evaluation.passed else "red"
    output.line(f"{verdict}: {evaluation.summary()}", style=style)


def gate_policy(policy: GatePolicy) -> None:
    scope = f"model {policy.model}" if policy.model else "the registry"
    if not policy.revision:
        output.line(f"no gates set for {scope}")
        return
    by = f" by {policy.created_by}" if policy.created_by else ""
    when = f" at {output.when(policy.created_at)}" if policy.created_at else ""
    output.line(f"gates of {scope}, revision {policy.revision}{by}{when}")
    grid = output.table("stage", "requires", "rules")
    for stage, g in policy.gates.items():
        output.add_row(grid, [stage, list(g.require), "\n".join(r.text for r in g.rules)])
    output.show(grid)


def history(events: Iterable[HistoryEvent]) -> None:
    grid = output.table(
        "at", "actor", "kind", "version", "from → to", "reason", no_wrap=("at", "kind")
    )
    for e in events:
        output.add_row(grid, [e.at, e.actor, e.kind, e.version, _move(e), e.reason])
    output.show(grid)


def _move(e: HistoryEvent) -> str:
    if e.from_stage or e.to_stage:
        return f"{e.from_stage or ''} → {e.to_stage or ''}".strip()
    alias = e.details.get("alias")
    return f"@{alias}" if isinstance(alias, str) else ""


def verify_report(report: VerifyReport) -> None:
    blobs = output.count(report.checked_blobs, "blob")
    checked = f"checked {blobs} ({output.size(report.checked_bytes)})"
    if report.checked_external:
        checked += f" and {output.count(report.checked_external, 'external file')}"
    if report.ok:
        output.line(f"{checked}: ok")
        return
    for p in report.problems:
        users = ", ".join(p.referenced_by) or "nothing"
        what = p.source or p.sha256
        output.line(f"{what} {p.problem}: {p.detail} (referenced by {users})", style="red")
    output.line(f"{checked}: {output.count(len(report.problems), 'problem')}")


def gc_report(report: GcReport) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    output.line(
        f"{verb} {output.count(report.deleted_blobs, 'blob')} "
        f"({output.size(report.deleted_bytes)}), kept {report.kept_recent} recent unreferenced"
    )


def lifecycle(lc: Lifecycle) -> None:
    grid = output.table("stage", "moves to", "exclusive", title="lifecycle")
    for stage in lc.stages:
        name = f"{stage} (initial)" if stage == lc.initial else stage
        overflow = lc.exclusive.get(stage)
        exclusive = f"yes, previous holder → {overflow}" if overflow else ""
        output.add_row(grid, [name, ", ".join(lc.transitions.get(stage, ())), exclusive])
    output.show(grid)


def events(items: Iterable[HistoryEvent]) -> None:
    grid = output.table(
        "id", "at", "actor", "kind", "ref", "from → to", "reason", no_wrap=("id", "at", "kind")
    )
    for e in items:
        ref = f"{e.name}/{e.version}" if e.version is not None else e.name
        output.add_row(grid, [e.id, e.at, e.actor, e.kind, ref, _move(e), e.reason])
    output.show(grid)


def event_line(e: HistoryEvent) -> None:
    """One event on one line, as ``events watch`` prints it."""
    ref = f"{e.name}/{e.version}" if e.version is not None else e.name
    parts = [str(e.id), output.when(e.at), e.actor, e.kind, ref, _move(e)]
    environment = e.details.get("environment")
    if isinstance(environment, str):
        parts.append(f"{environment} ({e.details.get('status')})")
    if e.reason:
        parts.append(f"reason: {e.reason}")
    output.line(" ".join(p for p in parts if p))


def webhooks(items: Iterable[Webhook]) -> None:
    grid = output.table("id", "url", "kinds", "model", "created", "description")
    for w in items:
        kinds = ", ".join(w.kinds) or "all"
        output.add_row(grid, [w.id, w.url, kinds, w.model or "all", w.created_at, w.description])
    output.show(grid)


def deliveries(items: Iterable[WebhookDelivery]) -> None:
    grid = output.table(
        "id", "event", "kind", "status", "attempts", "answer", "next attempt", "error"
    )
    for d in items:
        output.add_row(
            grid,
            [
                d.id,
                d.event_id,
                d.kind,
                d.status,
                d.attempts,
                d.response_status,
                d.next_attempt_at,
                d.error,
            ],
        )
    output.show(grid)


def environments(items: Iterable[Environment]) -> None:
    grid = output.table("name", "description", "created", "by")
    for e in items:
        output.add_row(grid, [e.name, e.description, e.created_at, e.created_by])
    output.show(grid)


def deployments(items: Iterable[Deployment]) -> None:
    grid = output.table(
        "environment", "ref", "status", "at", "by", "note", no_wrap=("environment", "ref")
    )
    for d in items:
        output.add_row(grid, [d.environment, d.ref, d.status, d.deployed_at, d.deployed_by, d.note])
    output.show(grid)
