"""What governance costs: the audit chain on every write, and authorization on reads.

    python bench/governance.py            # SQLite and PostgreSQL, prints tables
    python bench/governance.py --write    # record bench/results/governance.md

Writes: the same calls through the service layer, each on a fresh registry, with the
hash-chained timeline as shipped and with a baseline that appends the same rows without
the chain (no head lock, no hash). The ratio is what the chain costs.

Reads and token checks: ``get`` and a name-filtered search as a principal with grants
(authorization on) and as one without (authorization off), and ``authenticate`` (one
token lookup, as a server with authentication on does per request).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from _machine import describe
from _report import Table, write_results
from modelreg import Config, EmbeddedRegistry
from modelreg.auth.principal import Grant, Principal
from modelreg.auth.roles import Role
from modelreg.service import events
from modelreg.store import tables as t
from modelreg.store.database import transaction_state

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "modelreg_bench_governance"
HERE = Path(__file__).resolve().parent


def _unchained(conn: Connection) -> None:
    """The baseline: the same event rows, appended without the chain."""
    pending: list[dict[str, Any]] = transaction_state(conn).pop(events._PENDING)
    next_id = conn.execute(sa.select(sa.func.max(t.events.c.id))).scalar() or 0
    for offset, values in enumerate(pending, start=1):
        values["id"], values["hash"] = next_id + offset, ""
    events._INSERT_EVENT.execute_many(conn, pending)


@contextlib.contextmanager
def chain(enabled: bool) -> Iterator[None]:
    original = events._append_pending
    if not enabled:
        events._append_pending = _unchained
    try:
        yield
    finally:
        events._append_pending = original


@contextlib.contextmanager
def registry(backend: str, url: str) -> Iterator[EmbeddedRegistry]:
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-") as home:
        if backend == "sqlite":
            uri = f"sqlite:///{home}/registry.db"
        else:
            admin = make_url(url)
            dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            uri = admin.set(database=DATABASE).render_as_string(hide_password=False)
        reg = EmbeddedRegistry(Config.load(uri=uri, artifacts=f"{home}/blobs", auth="off"))
        try:
            yield reg
        finally:
            reg.close()


def rate(calls: Sequence[Callable[[], object]]) -> float:
    start = time.perf_counter()
    for call in calls:
        call()
    return len(calls) / (time.perf_counter() - start)


def write_series(reg: EmbeddedRegistry, n: int, scratch: Path) -> dict[str, float]:
    """ops/s of three writes: create model (1 record), transition (1), tags (1)."""
    file = scratch / "w.bin"
    file.write_bytes(b"weights")
    for i in range(n):
        reg.register(f"m{i}", file)
    numbers = range(n)
    return {
        "create model": rate([functools.partial(reg.create_model, f"x{i}") for i in numbers]),
        "transition to staging": rate(
            [functools.partial(reg.transition, f"m{i}/1", "staging") for i in numbers]
        ),
        "set tags": rate([functools.partial(reg.set_tags, f"m{i}/1", {"k": "v"}) for i in numbers]),
    }


def writes(backend: str, url: str, n: int, repeat: int) -> Table:
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(repeat):
        for enabled in (True, False):  # alternate, so drift hits both alike
            with chain(enabled), registry(backend, url) as reg, tempfile.TemporaryDirectory() as d:
                results[enabled].append(write_series(reg, n, Path(d)))
                if enabled:
                    assert reg.audit_verify().ok
    rows: list[Sequence[str]] = []
    for op in results[True][0]:
        chained = statistics.median(r[op] for r in results[True])
        plain = statistics.median(r[op] for r in results[False])
        rows.append([op, f"{plain:,.0f}", f"{chained:,.0f}", f"{chained / plain:.2f}"])
    return Table(
        f"{backend}: writes, {n} calls each, median of {repeat} runs (ops/s)",
        ["operation", "without chain", "with chain", "ratio"],
        rows,
    )


def reads(backend: str, url: str, n: int, repeat: int) -> Table:
    with registry(backend, url) as reg, tempfile.TemporaryDirectory() as d:
        file = Path(d) / "w.bin"
        file.write_bytes(b"weights")
        for i in range(200):
            reg.register(f"team-{i % 4}-m{i}", file)
        reg.create_principal("ana")
        reg.grant("ana", "viewer", "team-1-*")
        reg.grant("ana", "contributor", "team-1-m1")
        secret = reg.create_token("ana").secret
        service = reg.service
        open_actor = Principal("ana")
        scoped = service.authenticate(secret)
        assert set(scoped.grants or ()) == {
            Grant(Role.VIEWER, "team-1-*"),
            Grant(Role.CONTRIBUTOR, "team-1-m1"),
        }

        def series(actor: Principal) -> dict[str, float]:
            return {
                "get NAME/1": rate([lambda: service.get(actor, "team-1-m5/1")] * n),
                "search name LIKE 'team-1-%'": rate(
                    [lambda: service.search_models(actor, filter="name LIKE 'team-1-%'")] * n
                ),
            }

        off, on = [], []
        for _ in range(repeat):
            off.append(series(open_actor))
            on.append(series(scoped))
        auth = [rate([lambda: service.authenticate(secret)] * n) for _ in range(repeat)]
    rows: list[Sequence[str]] = []
    for op in off[0]:
        a = statistics.median(r[op] for r in off)
        b = statistics.median(r[op] for r in on)
        rows.append([op, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}"])
    rows.append(["authenticate a token", "", f"{statistics.median(auth):,.0f}", ""])
    return Table(
        f"{backend}: reads through the service, {n} calls each, median of {repeat} (ops/s)",
        ["operation", "authorization off", "grants checked", "ratio"],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    tables: list[Table] = []
    for backend in args.backends.split(","):
        tables.append(writes(backend, args.postgres_url, args.calls, args.repeat))
        tables.append(reads(backend, args.postgres_url, args.calls, args.repeat))
        print(tables[-2].markdown(), tables[-1].markdown(), sep="\n", flush=True)
    notes = [
        "Writes: each run on a fresh registry, the two variants alternating; the baseline "
        "appends the same timeline rows with plain ids and no hash, so the ratio is the "
        "chain's cost: the head row's lock, its update and one SHA-256 per record.",
        "Reads: the same principal name with grants (as a token gives it) and without "
        "(authorization off); the search returns 50 of 200 models either way.",
        "PostgreSQL runs with the settings of the local server; SQLite with fsync on.",
        "On PostgreSQL the chain adds two statements to every write transaction (the head "
        "row's SELECT … FOR UPDATE and its UPDATE); on SQLite, whose writers are serialised "
        "anyway, only the hash. On a shared machine, compare several runs, not one ratio.",
    ]
    if args.write:
        facts = [*describe("local server" if "postgresql" in args.backends else None)]
        facts.append(("Settings", f"{args.calls} calls per series, {args.repeat} runs"))
        path = write_results("governance", "Governance benchmark", facts, tables, notes)
        print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
