"""Metadata operations at 100,000 versions, on SQLite and PostgreSQL.

    python bench/metadata.py                                    # both backends
    python bench/metadata.py --backends sqlite --versions 5000  # a quick look
    python bench/metadata.py --write                            # record bench/results/metadata.md

Each backend is filled through the service layer, the code path every registration takes
(``create_version`` with one small stored blob reused by every version, then stage
transitions). Then every operation is called ``--ops`` times, one call at a time after a
short warm-up, and timed call by call: ops/s, p50 and p99.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from _machine import describe
from _report import Table, render, write_results
from _timing import percentile, timed
from modelreg import Config, EmbeddedRegistry, FileEntry, ModelVersion, Page

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "modelreg_bench"
BACKENDS = ("sqlite", "postgresql")
HERE = Path(__file__).resolve().parent
# SQLite serialises writers on one database lock, so a second loader only adds lock
# waits; PostgreSQL commits in parallel and loads about twice as fast with two.
LOAD_PROCESSES = {"sqlite": 1, "postgresql": 2}
MODELS_PER_JOB = 25
STAGING_EVERY = 10
WARMUP = 5
PAGE_SIZE = 50
DEEP_PAGE = 50
TEAMS = ("risk", "growth", "search", "ads")
LEARNING_RATES = (0.3, 0.1, 0.03, 0.01, 0.003)
SHOWN_SETTINGS = ("synchronous_commit", "autovacuum", "shared_buffers")
STAGING_FILTER = "metrics.auc >= 0.95 AND stage = 'staging'"


@dataclass(frozen=True)
class Target:
    """Where one backend's registry lives: its database URI (None: SQLite in home)."""

    backend: str
    uri: str | None
    home: str

    def config(self, *, fsync: bool = True) -> Config:
        return Config.load(uri=self.uri, home=self.home, fsync=fsync)


@dataclass(frozen=True)
class LoadJob:
    """Models ``first`` to ``stop - 1`` of one registry, for one loader process."""

    target: Target
    first: int
    stop: int
    versions_per_model: int
    blob: FileEntry


@dataclass(frozen=True)
class Query:
    """A paginated search: a filter and an ordering."""

    label: str
    filter: str | None
    order_by: tuple[str, ...] | None


PAGED = (
    Query("all versions by name", None, None),
    Query("auc >= 0.9 by -auc", "metrics.auc >= 0.9", ("-metrics.auc",)),
)


@dataclass(frozen=True)
class Timing:
    """Per-call seconds of one operation, and the wall time of the whole series."""

    label: str
    samples: tuple[float, ...]
    elapsed: float

    def row(self) -> list[str]:
        return [
            self.label,
            f"{len(self.samples):,}",
            f"{len(self.samples) / self.elapsed:,.0f}",
            f"{1000 * percentile(self.samples, 50):.2f}",
            f"{1000 * percentile(self.samples, 99):.2f}",
        ]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark on each backend, print its tables and, with --write, record them."""
    args = parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    tables, notes = [], []
    with tempfile.TemporaryDirectory(dir=args.data_dir, prefix="metadata-") as tmp:
        for backend in args.backends:
            table, lines = bench_backend(backend, Path(tmp), args)
            print(table.markdown(), flush=True)
            tables.append(table)
            notes += lines
    notes += NOTES
    print(render([], notes))
    if args.write:
        facts = [*describe(postgres_description(args)), settings(args)]
        path = write_results("metadata", "Metadata benchmark", facts, tables, notes)
        print(f"wrote {path.relative_to(HERE.parent)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends",
        type=lambda text: text.split(","),
        default=list(BACKENDS),
        help="comma-separated: sqlite,postgresql",
    )
    parser.add_argument("--versions", type=int, default=100_000, help="versions to load")
    parser.add_argument("--models", type=int, default=1_000, help="models they are spread over")
    parser.add_argument("--ops", type=int, default=500, help="timed calls per operation")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MODELREG_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help=f"server to create the {BENCH_DATABASE} database on "
        "(default: $MODELREG_BENCH_POSTGRES_URL or the local server)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=HERE / ".data", help="where SQLite and blobs go"
    )
    parser.add_argument("--write", action="store_true", help="write bench/results/metadata.md")
    args = parser.parse_args(argv)
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if not 0 < args.models <= args.versions:
        parser.error("--models must be between 1 and --versions")
    return args


def settings(args: argparse.Namespace) -> tuple[str, str]:
    per_model = args.versions // args.models
    return (
        "Settings",
        f"{per_model * args.models:,} versions in {args.models:,} models ({per_model} each; "
        f"every {STAGING_EVERY}th and the last go to staging, the last then to production); "
        f"{args.ops} timed calls per operation after {WARMUP} warm-up calls; measured with "
        "the default settings (fsync on: SQLite in WAL mode with synchronous=FULL)",
    )


NOTES = [
    "Every call goes through the SDK or its service layer in this process, as an "
    "application would; ops/s is calls divided by the wall time of the series.",
    "register is create_version into an existing model with an already stored blob "
    "(no bytes copied); the transitions move those new versions, and each move to "
    "production archives the model's previous production version.",
    "After loading, PostgreSQL gets an ANALYZE, as autovacuum would give it: without "
    "statistics its planner reads the child tables (metrics, params, tags, files) of "
    "every listed version with sequential scans.",
    "Pages are fetched with the next-page token of the previous page (keyset "
    f"pagination); page {DEEP_PAGE} is fetched again and again with the same token.",
]


def bench_backend(backend: str, work: Path, args: argparse.Namespace) -> tuple[Table, list[str]]:
    """Load one backend, then time every operation on it."""
    per_model = args.versions // args.models
    with (
        open_target(backend, work, args.postgres_url) as target,
        EmbeddedRegistry(target.config()) as reg,
    ):
        blob = store_blob(reg)
        load_note = load(target, blob, args.models, per_model)
        analyze(target)
        timings = measure(reg, blob, args.models, per_model, args.ops)
    table = Table(
        f"{backend}: {per_model * args.models:,} versions in {args.models:,} models",
        ["operation", "calls", "ops/s", "p50 ms", "p99 ms"],
        [t.row() for t in timings],
    )
    return table, [f"{backend}: {load_note}", *page_notes(backend, timings)]


@contextlib.contextmanager
def open_target(backend: str, work: Path, postgres_url: str) -> Iterator[Target]:
    """A fresh, empty registry location for ``backend``, removed afterwards."""
    home = str(work / backend)
    if backend == "sqlite":
        yield Target(backend, None, home)
        return
    with postgres_database(postgres_url) as uri:
        yield Target(backend, uri, home)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """Create the benchmark database (dropping a leftover one) and drop it at the end."""
    admin = make_url(admin_url)
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DATABASE))
    with libpq_connection(admin) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DATABASE)))
    try:
        yield admin.set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    finally:
        with libpq_connection(admin) as conn:
            conn.execute(drop)


def libpq_connection(url: URL) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit psycopg connection to ``url`` (CREATE DATABASE refuses transactions)."""
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq, autocommit=True)


def analyze(target: Target) -> None:
    """Refresh PostgreSQL's planner statistics after the bulk load, as autovacuum would
    soon after on a production server (it may be off on a test server)."""
    if target.uri is not None:
        with libpq_connection(make_url(target.uri)) as conn:
            conn.execute("ANALYZE")


def postgres_description(args: argparse.Namespace) -> str | None:
    """The server's version and commit durability, if PostgreSQL was benchmarked."""
    if "postgresql" not in args.backends:
        return None
    with libpq_connection(make_url(args.postgres_url)) as conn:
        version = show(conn, "server_version")
        options = ", ".join(f"{name}={show(conn, name)}" for name in SHOWN_SETTINGS)
    return f"{version} server ({options})"


def show(conn: psycopg.Connection[tuple[object, ...]], setting: str) -> str:
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
    assert row is not None
    return str(row[0])


def store_blob(reg: EmbeddedRegistry) -> FileEntry:
    """Store one small blob; every version's manifest points at it."""
    digest = reg.blobs.put(io.BytesIO(b"benchmark weights"))
    return FileEntry(path="model.bin", size=digest.size, sha256=digest.sha256)


def model_name(index: int) -> str:
    return f"model-{index:04d}"


def new_version(
    reg: EmbeddedRegistry, name: str, blob: FileEntry, rng: random.Random
) -> ModelVersion:
    """Register a version of ``name`` with random metrics, params and a team tag."""
    return reg.service.create_version(
        reg.principal,
        name,
        [blob],
        metrics={"auc": rng.uniform(0.5, 1.0), "latency_ms": rng.uniform(5.0, 50.0)},
        params={"depth": rng.randint(2, 12), "lr": rng.choice(LEARNING_RATES)},
        tags={"team": rng.choice(TEAMS)},
    )


def load(target: Target, blob: FileEntry, models: int, per_model: int) -> str:
    """Fill the registry in parallel processes; returns a line describing the load."""
    jobs = [
        LoadJob(target, first, min(first + MODELS_PER_JOB, models), per_model, blob)
        for first in range(0, models, MODELS_PER_JOB)
    ]
    processes = LOAD_PROCESSES[target.backend]
    total, versions, transitions = models * per_model, 0, 0
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        for future in as_completed([pool.submit(load_models, job) for job in jobs]):
            added, moved = future.result()
            versions, transitions = versions + added, transitions + moved
            report_progress(target.backend, versions, total, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    return (
        f"loaded {versions:,} versions and {transitions:,} transitions through the service "
        f"in {seconds:,.0f} s ({versions / seconds:,.0f} versions/s, {processes} "
        f"process{'es' if processes > 1 else ''}, fsync off while loading)"
    )


def report_progress(backend: str, done: int, total: int, seconds: float) -> None:
    rate = done / seconds
    print(
        f"{backend}: loaded {done:,}/{total:,} versions, {rate:,.0f}/s, "
        f"{(total - done) / rate:,.0f} s to go",
        file=sys.stderr,
        flush=True,
    )


def load_models(job: LoadJob) -> tuple[int, int]:
    """Register every version of the job's models; returns (versions, transitions)."""
    rng = random.Random(job.first)
    transitions = 0
    with EmbeddedRegistry(job.target.config(fsync=False)) as reg:
        for index in range(job.first, job.stop):
            transitions += load_model(reg, model_name(index), job, rng)
    return (job.stop - job.first) * job.versions_per_model, transitions


def load_model(reg: EmbeddedRegistry, name: str, job: LoadJob, rng: random.Random) -> int:
    """One model's versions: every 10th and the last to staging, the last to production."""
    transitions = 0
    for _ in range(job.versions_per_model):
        version = new_version(reg, name, job.blob, rng)
        if version.version % STAGING_EVERY == 0 or version.version == job.versions_per_model:
            reg.transition(version.ref, "staging")
            transitions += 1
    reg.transition(f"{name}@latest", "production")
    return transitions + 1


class Workload:
    """The timed operations, each a function of its call number."""

    def __init__(self, reg: EmbeddedRegistry, blob: FileEntry, models: int, per_model: int) -> None:
        self.reg = reg
        self.blob = blob
        self.models = models
        self.per_model = per_model
        self.rng = random.Random(7)
        self.registered: list[str] = []

    def random_model(self) -> str:
        return model_name(self.rng.randrange(self.models))

    def register(self, call: int) -> None:
        version = new_version(self.reg, model_name(call % self.models), self.blob, self.rng)
        self.registered.append(version.ref)

    def to_staging(self, call: int) -> None:
        self.reg.transition(self.registered[call], "staging")

    def to_production(self, call: int) -> None:
        self.reg.transition(self.registered[call], "production")

    def resolve(self, _call: int) -> None:
        self.reg.resolve(f"{self.random_model()}@production")

    def get(self, _call: int) -> None:
        self.reg.get(f"{self.random_model()}/{self.rng.randint(1, self.per_model)}")

    def search_staging(self, _call: int) -> None:
        self.reg.search_versions(STAGING_FILTER, order_by=["-metrics.auc"], page_size=PAGE_SIZE)

    def search_model(self, _call: int) -> None:
        self.reg.search_versions(f"name = '{self.random_model()}' AND metrics.auc >= 0.9")


def measure(
    reg: EmbeddedRegistry, blob: FileEntry, models: int, per_model: int, calls: int
) -> list[Timing]:
    """Time every operation ``calls`` times; writes first, so reads see their results."""
    work = Workload(reg, blob, models, per_model)
    timings = [
        time_calls("register (create_version)", work.register, calls),
        time_calls("transition development -> staging", work.to_staging, calls),
        time_calls("transition staging -> production", work.to_production, calls),
        time_calls("resolve NAME@production", work.resolve, calls),
        time_calls("get NAME/N", work.get, calls),
        time_calls(f"search {STAGING_FILTER}, by -auc", work.search_staging, calls),
        time_calls("search name = 'model-NNNN' AND metrics.auc >= 0.9", work.search_model, calls),
    ]
    for query in PAGED:
        deep = page_token(reg, query, DEEP_PAGE)
        for number, token in ((1, None), (DEEP_PAGE, deep)):
            fetch = functools.partial(search_page, reg, query, token)
            timings.append(time_calls(f"page {number}: {query.label}", fetch, calls))
    return timings


def time_calls(label: str, operation: Callable[[int], object], calls: int) -> Timing:
    """Call ``operation`` with numbers 0.. : WARMUP untimed calls, then ``calls`` timed."""
    for call in range(WARMUP):
        operation(call)
    start = time.perf_counter()
    samples = [timed(functools.partial(operation, call)) for call in range(WARMUP, WARMUP + calls)]
    return Timing(label, tuple(samples), time.perf_counter() - start)


def search_page(
    reg: EmbeddedRegistry, query: Query, token: str | None, _call: int = 0
) -> Page[ModelVersion]:
    return reg.search_versions(
        query.filter, order_by=query.order_by, page_size=PAGE_SIZE, page_token=token
    )


def page_token(reg: EmbeddedRegistry, query: Query, number: int) -> str | None:
    """The token that fetches page ``number`` of ``query``, found by paging through."""
    token: str | None = None
    for _ in range(number - 1):
        token = search_page(reg, query, token).next_page_token
        if token is None:
            raise SystemExit(f"{query.label} has fewer than {number} pages: load more versions")
    return token


def page_notes(backend: str, timings: Sequence[Timing]) -> list[str]:
    """How much slower the deep page is than the first, by median."""
    p50 = {t.label: percentile(t.samples, 50) for t in timings}
    return [
        f"{backend}: page {DEEP_PAGE} / page 1 at p50 = "
        f"{p50[f'page {DEEP_PAGE}: {q.label}'] / p50[f'page 1: {q.label}']:.2f} ({q.label})"
        for q in PAGED
    ]


if __name__ == "__main__":
    main()
