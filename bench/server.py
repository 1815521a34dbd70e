"""Metadata operations through modelreg's server and MLflow's tracking server, side by side.

    python bench/server.py            # print the tables (about 10 minutes)
    python bench/server.py --write    # also record them in bench/results/server.md
    python bench/server.py --quick    # smaller registry, shorter loops: a quick look

Three servers, one after another on this machine in one run: ``modelreg serve`` with its
default settings, then ``mlflow server`` (SQLite backend, local artifact destination
behind its proxy) with its default worker count and with one worker. Each gets a fresh
data folder, is waited on until it answers and then until its processes are idle, and is
driven through its project's own Python client by ``_clients.py`` in a process of its own
(MLflow's from ``bench/.venv-mlflow``, made on demand). Calls are timed one by one: ops/s
(calls over the wall time of the series), p50 and p99; every comparison is a ratio.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _servers
from _machine import describe
from _report import Table, render, write_results
from _servers import Memory, Server, Snapshot, other_load
from _timing import percentile

HERE = Path(__file__).resolve().parent
MB = 1_000_000
TARGET_DEFAULT = 10.0
TARGET_BEST = 3.0
STALL_MS = 20.0
FLAT = 1.5
TITLE = "Server benchmark: modelreg and MLflow"


@dataclass(frozen=True)
class Op:
    """One measured operation: its key in ``_clients.py``'s output and both clients' calls."""

    key: str
    label: str
    mlflow: str
    target: bool = True


OPS = (
    Op("create_model", "create model", "create_registered_model"),
    Op("create_version", "create version (tiny file)", "create_model_version(runs:/RUN/model)"),
    Op(
        "transition_staging",
        "transition to staging",
        "transition_model_version_stage",
        target=False,
    ),
    Op("transition_production", "transition to production", "transition_model_version_stage"),
    Op(
        "resolve_production",
        "resolve NAME@production",
        "get_latest_versions(stages=[Production])",
    ),
    Op("get_by_alias", "resolve NAME@champion", "get_model_version_by_alias"),
    Op("set_alias", "set alias", "set_registered_model_alias"),
)


@dataclass(frozen=True)
class Conditions:
    """How busy the machine was with other work while one server was measured."""

    quiet_wait: float
    before: Snapshot
    after: Snapshot

    def row(self, label: str) -> list[str]:
        other, steal = other_load(self.before, self.after)
        return [
            label,
            f"{self.quiet_wait:.0f}",
            f"{self.after.wall - self.before.wall:.0f}",
            f"{other:.2f}",
            f"{steal:.2f}",
        ]


CONDITIONS_HEADERS = [
    "server",
    "waited for a quiet machine (s)",
    "measured for (s)",
    "other work (cores)",
    "stolen by host (cores)",
]


@dataclass
class Run:
    """What one server did: metadata samples, the concurrent loop, memory."""

    server: str
    workers: str
    metadata: dict[str, Any] = field(default_factory=dict)
    loop: list[dict[str, Any]] = field(default_factory=list)
    loop_seconds: float = 0.0
    server_memory: Memory | None = None
    conditions: Conditions | None = None
    # Every round's conditions, when this run is the best of several rounds.
    round_conditions: list[Conditions] = field(default_factory=list)
    processes: int = 0
    ready_seconds: float = 0.0
    idle_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def samples(self, key: str) -> list[float]:
        values: list[float] = self.metadata["samples"][key]
        return values

    def ops_per_s(self, key: str) -> float:
        return len(self.samples(key)) / float(self.metadata["elapsed"][key])

    def p(self, key: str, pct: int) -> float:
        return percentile(self.samples(key), pct) * 1000

    def aggregate(self) -> float:
        return sum(len(c["samples"]) for c in self.loop) / self.loop_seconds

    def loop_samples(self) -> list[float]:
        return [s for c in self.loop for s in c["samples"]]

    def listings(self, size: int) -> list[list[float]]:
        """Seconds per page of each listing of every model at ``size`` models."""
        values: list[list[float]] = self.metadata["pages"][str(size)]
        return values

    def page_ms(self, size: int, index: int) -> float:
        """Median milliseconds of page ``index`` (-1: the last) over the listings."""
        return median_ms([listing[min(index, len(listing) - 1)] for listing in self.listings(size)])

    @property
    def client_kib(self) -> int:
        return int(self.metadata["peak_kib"])


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print its tables and, with --write, record them."""
    args = parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow = _servers.mlflow_python(args.mlflow_spec)
    start = source_revision()
    facts = [*describe(), *software(mlflow, start), settings(args)]
    with tempfile.TemporaryDirectory(dir=args.data_dir, prefix="server-") as tmp:
        work = Path(tmp)
        # The three servers take turns, round after round: a slow spell of the shared
        # machine then costs one round of every server, not all of one server's figures.
        rounds = [
            [
                measure_server(args, "modelreg", sys.executable, None, work / "modelreg"),
                measure_server(args, "mlflow", mlflow, None, work / "mlflow-default"),
                measure_server(args, "mlflow", mlflow, 1, work / "mlflow-1"),
            ]
            for _ in range(args.rounds)
        ]
        runs = [best_of([one[i] for one in rounds]) for i in range(3)]
        stalls = measure_stalls(args, work)
    tables, notes = report(args, runs, stalls)
    notes += revision_moved(start)
    print(render(tables, notes))
    if args.write:
        path = write_results("server", TITLE, facts, tables, notes)
        print(f"wrote {path.relative_to(HERE.parent)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200, help="models in the small registry")
    parser.add_argument("--large", type=int, default=2000, help="models in the large registry")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client processes")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the loop")
    parser.add_argument("--latency-calls", type=int, default=500, help="calls in the stall check")
    parser.add_argument("--search-calls", type=int, default=100, help="timed search calls")
    parser.add_argument("--page-rounds", type=int, default=10, help="listings of every page")
    parser.add_argument("--page-size", type=int, default=100, help="models per search page")
    parser.add_argument(
        "--rounds", type=int, help="rounds of all three servers, the best counts (2; --quick 1)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, short loops")
    parser.add_argument(
        "--mlflow-spec", default="mlflow", help="what to pip install in bench/.venv-mlflow"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=HERE / ".data", help="where the servers keep data"
    )
    parser.add_argument("--write", action="store_true", help="write bench/results/server.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.small, args.large, args.clients, args.duration = 120, 300, 4, 3.0
        args.latency_calls, args.search_calls, args.page_rounds = 100, 20, 2
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 0 < args.small < args.large:
        parser.error("--small must be between 0 and --large")
    return args


def software(mlflow: Path, revision: str) -> list[tuple[str, str]]:
    """Versions of both projects and of what serves them."""
    ours = _servers.package_versions(sys.executable, ["uvicorn", "httpx", "fastapi", "starlette"])
    theirs = _servers.package_versions(mlflow, ["mlflow", "uvicorn", "SQLAlchemy", "requests"])
    return [
        (
            "modelreg side",
            f"commit {revision}; {', '.join(f'{k} {v}' for k, v in ours.items())} "
            f"(Python {sys.version.split()[0]})",
        ),
        (
            "MLflow side",
            f"{', '.join(f'{k} {v}' for k, v in theirs.items())} in its own virtualenv "
            f"(bench/.venv-mlflow, Python {python_version(mlflow)}); "
            f"`mlflow server` default workers: {mlflow_default_workers(mlflow)}",
        ),
    ]


def source_revision() -> str:
    """The checkout measured: ``git describe --always --dirty`` (dirty: src/ or other
    tracked files had uncommitted changes, which an editable install runs too)."""
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return described.stdout.strip() or "unknown"


def revision_moved(start: str) -> list[str]:
    """A note if the checkout changed while the benchmark ran (the header shows the
    revision at the start, when modelreg was measured)."""
    end = source_revision()
    if end == start:
        return []
    return [
        f"The checkout moved from {start} to {end} during this run; modelreg was measured "
        f"first, at {start}."
    ]


def python_version(python: Path | str) -> str:
    return subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def mlflow_default_workers(mlflow: Path) -> str:
    """The default of ``mlflow server --workers``, as its --help states it."""
    return default_workers([str(mlflow.parent / "mlflow"), "server", "--help"])


def default_workers(argv: Sequence[str]) -> str:
    """The default of the ``--workers`` option in the help text ``argv`` prints."""
    text = subprocess.run(argv, capture_output=True, text=True, env=_servers.base_env()).stdout
    found = re.search(r"--workers[^(]*\(default:\s*(\d+)\)", text)
    return found.group(1) if found else "?"


def settings(args: argparse.Namespace) -> tuple[str, str]:
    return (
        "Settings",
        f"{args.small:,} then {args.large:,} models; {args.search_calls} timed searches and "
        f"{args.page_rounds} listings of every page ({args.page_size} models a page) at each "
        f"size; {args.clients} concurrent client processes for {args.duration:.0f} s; "
        f"{args.latency_calls} resolves in the stall check. modelreg: `modelreg serve` with "
        "its defaults, SQLite and blobs in a fresh MODELREG_HOME. MLflow: `mlflow server "
        "--backend-store-uri sqlite:///… --artifacts-destination DIR --serve-artifacts`, "
        "default workers and `--workers 1`, MLFLOW_DISABLE_TELEMETRY=true. Each server is "
        f"measured after its process tree has used < {100 * _servers.IDLE_CPU:.0f}% of a "
        f"core for {_servers.IDLE_WINDOWS} s in a row",
    )


def measure_server(
    args: argparse.Namespace, kind: str, python: Path | str, workers: int | None, data: Path
) -> Run:
    """Start one server, run the metadata scenario and the concurrent loop against it."""
    quiet_wait = _servers.wait_machine_quiet()
    port = _servers.free_port()
    if kind == "mlflow":
        context = _servers.mlflow_server(Path(python), data, port, workers)
    else:
        context = _servers.modelreg_server(data, port, workers)
    with context as server:
        before = _servers.snapshot(server)
        label = server.label
        print(
            f"{label}: ready in {server.ready_seconds:.1f} s, idle after "
            f"{server.idle_seconds:.1f} s more",
            file=sys.stderr,
            flush=True,
        )
        run = Run(label, worker_count(kind, python, workers, server))
        run.ready_seconds, run.idle_seconds = server.ready_seconds, server.idle_seconds
        run.processes = len(server.pids())
        run.notes += server.notes
        started = time.monotonic()
        run.metadata = client(python, kind, server, "metadata", metadata_args(args), data)
        print(
            f"{label}: metadata in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True
        )
        concurrent(args, run, python, kind, server, data)
        run.conditions = Conditions(quiet_wait, before, _servers.snapshot(server))
        run.server_memory = server.memory()
    shutil.rmtree(data)
    return run


def best_of(rounds: Sequence[Run]) -> Run:
    """One server's rounds as one run: for each operation the round with the most ops/s
    (its latencies with it), the round with the fastest listings, the round with the
    most concurrent ops/s, and the largest memory any round reached."""
    first = rounds[0]
    best = Run(first.server, first.workers)
    best.ready_seconds = max(r.ready_seconds for r in rounds)
    best.idle_seconds = max(r.idle_seconds for r in rounds)
    best.processes = max(r.processes for r in rounds)
    best.notes = sorted({note for r in rounds for note in r.notes})
    best.round_conditions = [r.conditions for r in rounds if r.conditions is not None]
    samples, elapsed, pages = {}, {}, {}
    for key in first.metadata["samples"]:
        top = max(rounds, key=lambda r: r.ops_per_s(key))
        samples[key] = top.metadata["samples"][key]
        elapsed[key] = top.metadata["elapsed"][key]
    for size in first.metadata["pages"]:
        top = min(
            rounds, key=lambda r: median_ms([p for lst in r.metadata["pages"][size] for p in lst])
        )
        pages[size] = top.metadata["pages"][size]
    best.metadata = {
        **first.metadata,
        "samples": samples,
        "elapsed": elapsed,
        "pages": pages,
        "peak_kib": max(r.client_kib for r in rounds),
    }
    top = max(rounds, key=lambda r: r.aggregate())
    best.loop, best.loop_seconds = top.loop, top.loop_seconds
    best.server_memory = max(
        (r.server_memory for r in rounds if r.server_memory is not None),
        key=lambda m: m.sum_of_peaks_kib,
    )
    return best


def worker_count(kind: str, python: Path | str, workers: int | None, server: Server) -> str:
    """How many workers serve: as asked, else as ``modelreg serve`` announced it in its
    log ("(2 workers)"), else the default that ``mlflow server --help`` states."""
    if workers is not None:
        return str(workers)
    if kind == "mlflow":
        return default_workers([str(Path(python).parent / "mlflow"), "server", "--help"])
    found = re.search(r"\((\d+) workers?[,)]", server.log.read_text(errors="replace"))
    return found.group(1) if found else "?"


def metadata_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "small": args.small,
        "large": args.large,
        "warmup": 5,
        "page_size": args.page_size,
        "page_rounds": args.page_rounds,
        "search_calls": args.search_calls,
    }


def client(
    python: Path | str,
    kind: str,
    server: Server,
    scenario: str,
    arguments: dict[str, Any],
    data: Path,
) -> dict[str, Any]:
    """Run one ``_clients.py`` scenario in a fresh process; its JSON result."""
    log = data / f"client-{scenario}.log"
    with open(log, "ab") as err:
        child = subprocess.run(
            [str(python), str(_servers.CLIENTS), kind, server.url, scenario, json.dumps(arguments)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=_servers.base_env(),
            check=False,
        )
    if child.returncode != 0:
        raise RuntimeError(f"{kind} {scenario} client failed:\n{_servers.tail(log)}")
    result: dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    return result


def concurrent(
    args: argparse.Namespace,
    run: Run,
    python: Path | str,
    kind: str,
    server: Server,
    data: Path,
) -> None:
    """``--clients`` processes resolve in a loop together for ``--duration`` seconds."""
    arguments = json.dumps({"duration": args.duration, "models": args.small})
    log = data / "client-loop.log"
    with open(log, "ab") as err:
        children = [
            subprocess.Popen(
                [str(python), str(_servers.CLIENTS), kind, server.url, "loop", arguments],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=_servers.base_env(),
                text=True,
            )
            for _ in range(args.clients)
        ]
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{kind} loop client failed:\n{_servers.tail(log)}")
        _servers.wait_idle(server)  # the clients' imports and warm-up are over
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, _ = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"{kind} loop client failed:\n{_servers.tail(log)}")
            run.loop.append(json.loads(out.splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    run.loop_seconds = args.duration


@dataclass(frozen=True)
class Stall:
    """Resolves one after another over one kept-alive connection."""

    label: str
    workers: int
    samples: list[float]


def measure_stalls(args: argparse.Namespace, work: Path) -> list[Stall]:
    """modelreg with 2 workers, then the same app under plain uvicorn with 2 workers, on
    its default event loop (uvloop, which uvicorn[standard] brings) and on asyncio's."""
    stalls = []
    for plain, loop in ((False, "auto"), (True, "auto"), (True, "asyncio")):
        data = work / f"stall-{plain}-{loop}"
        port = _servers.free_port()
        with _servers.modelreg_server(data, port, 2, plain_uvicorn=plain, loop=loop) as server:
            result = client(
                sys.executable,
                "modelreg",
                server,
                "latency",
                {"calls": args.latency_calls},
                data,
            )
            label = server.label
        stalls.append(Stall(label, 2, result["samples"]))
        shutil.rmtree(data)
    return stalls


def report(
    args: argparse.Namespace, runs: Sequence[Run], stalls: Sequence[Stall]
) -> tuple[list[Table], list[str]]:
    """Every table, and the verdicts on the targets."""
    ours, default, best = runs
    tables = [
        throughput_table(args, ours, default, best),
        latency_table(args, runs),
        paging_table(args, runs),
        concurrency_table(args, runs),
        stall_table(stalls, default, best),
        memory_table(runs),
        Table(
            "Machine during each measurement",
            CONDITIONS_HEADERS,
            [
                conditions.row(f"{run.server}, round {i}")
                for run in runs
                for i, conditions in enumerate(run.round_conditions, 1)
            ],
        ),
    ]
    return tables, verdicts(args, ours, default, best, stalls) + notes(args, runs)


def all_ops(args: argparse.Namespace) -> list[Op]:
    """The measured operations, searches included."""
    search = "search_registered_models(filter_string=…, max_results=…)"
    return [
        *OPS,
        Op(f"search_{args.small}", f"search name filter, {args.small:,} models", search),
        Op(f"search_{args.large}", f"search name filter, {args.large:,} models", search),
        Op(
            "create_model_more",
            f"create model ({args.small:,} -> {args.large:,})",
            "create_registered_model",
            target=False,
        ),
    ]


def throughput_table(args: argparse.Namespace, ours: Run, default: Run, best: Run) -> Table:
    table = Table(
        "Throughput, one client, one call after another (ops/s)",
        [
            "operation",
            "modelreg",
            "MLflow default",
            "MLflow 1 worker",
            "x MLflow default",
            "x MLflow 1 worker",
            "MLflow call",
        ],
    )
    for op in all_ops(args):
        mine = ours.ops_per_s(op.key)
        table.rows.append(
            [
                op.label,
                f"{mine:,.0f}",
                f"{default.ops_per_s(op.key):,.1f}",
                f"{best.ops_per_s(op.key):,.1f}",
                f"{mine / default.ops_per_s(op.key):.1f}",
                f"{mine / best.ops_per_s(op.key):.1f}",
                f"`{op.mlflow}`",
            ]
        )
    return table


def latency_table(args: argparse.Namespace, runs: Sequence[Run]) -> Table:
    ours, default, best = runs
    table = Table(
        "Latency per call (ms)",
        [
            "operation",
            "modelreg p50",
            "modelreg p99",
            "MLflow default p50",
            "MLflow default p99",
            "MLflow 1 worker p50",
            "MLflow 1 worker p99",
            "modelreg p99 < MLflow p50",
        ],
    )
    for op in all_ops(args):
        floor = min(default.p(op.key, 50), best.p(op.key, 50))
        table.rows.append(
            [
                op.label,
                *(f"{run.p(op.key, pct):.2f}" for run in runs for pct in (50, 99)),
                "yes" if ours.p(op.key, 99) < floor else "NO",
            ]
        )
    return table


def paging_table(args: argparse.Namespace, runs: Sequence[Run]) -> Table:
    """Time per page when listing every model page by page, at both sizes."""
    table = Table(
        f"Every page of `{ALL_FILTER}` ({args.page_size} a page, {args.page_rounds} listings; "
        "p50 ms)",
        [
            "server",
            "models",
            "pages",
            "page 1",
            "page 2",
            "page 3",
            "last page",
            "every page",
            "page 1 vs small",
            "last page vs page 3",
        ],
    )
    for run in runs:
        for size in (args.small, args.large):
            listings = run.listings(size)
            count = len(listings[0])
            table.rows.append(
                [
                    run.server,
                    f"{size:,}",
                    str(count),
                    *(f"{run.page_ms(size, i):.2f}" if i < count else "-" for i in range(3)),
                    f"{run.page_ms(size, -1):.2f}",
                    f"{percentile([s for one in listings for s in one], 50) * 1000:.2f}",
                    f"{run.page_ms(size, 0) / run.page_ms(args.small, 0):.2f}x",
                    f"{run.page_ms(size, -1) / run.page_ms(size, 2):.2f}x" if count > 3 else "-",
                ]
            )
    return table


ALL_FILTER = "name LIKE 'm-%'"


def median_ms(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return value * 1000


def concurrency_table(args: argparse.Namespace, runs: Sequence[Run]) -> Table:
    ours = runs[0]
    table = Table(
        f"{args.clients} concurrent clients resolving for {args.duration:.0f} s (one process each)",
        ["server", "workers", "ops/s", "p50 ms", "p99 ms", "modelreg x"],
    )
    for run in runs:
        samples = run.loop_samples()
        table.rows.append(
            [
                run.server,
                run.workers,
                f"{run.aggregate():,.0f}",
                f"{percentile(samples, 50) * 1000:.1f}",
                f"{percentile(samples, 99) * 1000:.1f}",
                f"{ours.aggregate() / run.aggregate():.1f}",
            ]
        )
    return table


def stall_table(stalls: Sequence[Stall], default: Run, best: Run) -> Table:
    table = Table(
        "Delayed-ACK stalls: resolve over one kept-alive connection, several workers",
        ["server", "calls", "p50 ms", "p99 ms", "max ms", f"calls > {STALL_MS:.0f} ms"],
    )
    for stall in stalls:
        table.rows.append(stall_row(stall.label, stall.samples))
    for run in (default, best):
        table.rows.append(
            stall_row(f"{run.server} (metadata run)", run.samples("resolve_production"))
        )
    return table


def stall_row(label: str, samples: Sequence[float]) -> list[str]:
    slow = sum(1 for s in samples if s * 1000 > STALL_MS)
    return [
        label,
        str(len(samples)),
        f"{percentile(samples, 50) * 1000:.2f}",
        f"{percentile(samples, 99) * 1000:.2f}",
        f"{max(samples) * 1000:.1f}",
        f"{slow} ({100 * slow / len(samples):.0f}%)",
    ]


def memory_table(runs: Sequence[Run]) -> Table:
    table = Table(
        "Memory (peak RSS, VmHWM, MB)",
        ["server", "server processes", "largest process", "all processes", "metadata client"],
    )
    for run in runs:
        memory = run.server_memory
        assert memory is not None
        table.rows.append(
            [
                run.server,
                str(memory.processes),
                f"{memory.largest_peak_kib * 1024 / MB:.0f}",
                f"{memory.sum_of_peaks_kib * 1024 / MB:.0f}",
                f"{run.client_kib * 1024 / MB:.0f}",
            ]
        )
    return table


def verdicts(
    args: argparse.Namespace, ours: Run, default: Run, best: Run, stalls: Sequence[Stall]
) -> list[str]:
    """One line per target."""
    lines = []
    ops = [op for op in all_ops(args) if op.target]
    for label, other, target in (
        ("default settings", default, TARGET_DEFAULT),
        ("one worker", best, TARGET_BEST),
    ):
        missed = [
            f"{op.label} ({ours.ops_per_s(op.key) / other.ops_per_s(op.key):.1f}x)"
            for op in ops
            if ours.ops_per_s(op.key) < target * other.ops_per_s(op.key)
        ]
        worst = min(ours.ops_per_s(op.key) / other.ops_per_s(op.key) for op in ops)
        lines.append(
            f"Target every metadata operation >= {target:.0f}x MLflow's throughput with "
            f"{label}: "
            + (f"met (lowest {worst:.1f}x)." if not missed else f"NOT met for {', '.join(missed)}.")
        )
    slow = [
        op.label
        for op in ops
        if ours.p(op.key, 99) >= min(default.p(op.key, 50), best.p(op.key, 50))
    ]
    lines.append(
        "Target modelreg p99 below MLflow's p50 (the faster of its two settings): "
        + ("met for every operation." if not slow else f"NOT met for {', '.join(slow)}.")
    )
    wider = ours.page_ms(args.large, 0) / ours.page_ms(args.small, 0)
    deeper = ours.page_ms(args.large, -1) / ours.page_ms(args.large, 2)
    flat = max(wider, deeper) <= FLAT
    lines.append(
        f"Target every page of a search flat as the registry grows: page 1 at "
        f"{args.large:,} models takes {wider:.2f}x its time at {args.small:,}, and the last "
        f"page {deeper:.2f}x page 3 ("
        + (f"met: within {FLAT}x)." if flat else f"NOT met: over {FLAT}x).")
    )
    ours_stall, contrast = stalls[0], stalls[-1]
    p99 = percentile(ours_stall.samples, 99) * 1000
    lines.append(
        f"No delayed-ACK stall with several workers: {ours_stall.label}, p99 {p99:.2f} ms "
        + ("(met)" if p99 < STALL_MS else "(NOT met)")
        + f"; {contrast.label} on the same app: p50 "
        f"{percentile(contrast.samples, 50) * 1000:.2f} ms."
    )
    lines.append(
        f"{args.clients} concurrent clients: modelreg {ours.aggregate():,.0f} ops/s, "
        f"{ours.aggregate() / default.aggregate():.1f}x MLflow default and "
        f"{ours.aggregate() / best.aggregate():.1f}x MLflow with one worker."
    )
    return lines


def notes(args: argparse.Namespace, runs: Sequence[Run]) -> list[str]:
    ready = "; ".join(
        f"{run.server} answered after {run.ready_seconds:.1f} s and was idle "
        f"{run.idle_seconds:.1f} s later" + (f" ({', '.join(run.notes)})" if run.notes else "")
        for run in runs
    )
    return [
        f"Rounds: the three servers are measured one after another, {args.rounds} times "
        "in turn; each figure is its server's best round for that figure (for an "
        "operation, the round with the most ops/s, with that round's latencies). The "
        "machine is shared and its speed drifts by tens of percent over minutes: taking "
        "turns gives every server the same chances of a fast spell.",
        f"Startup: {ready}. Nothing is timed before that.",
        "Each client is a fresh process with its project's own client: "
        "`modelreg.connect(URL)` and `mlflow.MlflowClient(tracking_uri=URL)`, each keeping "
        "its HTTP connection alive between calls. Five warm-up rounds of every operation "
        "on other models come first.",
        f"The small registry is {args.small:,} models, m-0000 upwards, each with one "
        "version; create model and create version call each model once, the others go "
        f"over them too (resolves pick models at random). The search `{SEARCH}` matches "
        f"100 models at both sizes and is one page of {args.page_size}.",
        "create version: modelreg registers a tiny file (uploads it, deduplicated after "
        "the first, then commits the version); MLflow's create_model_version records a "
        "source of an existing run (`runs:/RUN/model`, with its run_id) and the client "
        "then reads the version back until it is READY, as it always does.",
        "MLflow's stages are deprecated in favour of aliases, so its stage resolve "
        "(get_latest_versions) and its alias resolve (get_model_version_by_alias) are "
        "both shown; modelreg resolves NAME@production and NAME@champion the same way.",
        f"Paging: pages are fetched one after another with the previous page's token "
        f"until there is none, {args.page_rounds} times at each size. Only the first "
        f"{args.small:,} models have a version, so at {args.large:,} models pages 1 and 2 "
        "carry the same models as at the small size and the later pages lighter ones: "
        "flat means page 1 costs the same at both sizes and the last page the same as "
        "page 3. Offset pagination would make the last page dearer.",
        f"Concurrency: {args.clients} client processes wait until all have imported and "
        "warmed up and the server is idle again, then resolve random production versions "
        "in a loop; ops/s is all their calls over the duration. They share the 2 cores "
        "with the server.",
        "Delayed-ACK stalls: a response written in two segments waits for the client's "
        "delayed ACK (~40 ms on Linux) when Nagle's algorithm is on; uvicorn with several "
        "workers loses TCP_NODELAY (uvicorn issue #3149): it binds the listening socket "
        "itself without naming the protocol, and asyncio sets TCP_NODELAY only on sockets "
        "whose protocol is TCP; uvloop sets it on every TCP socket. `plain uvicorn` runs "
        "modelreg's app with `python -m uvicorn modelreg.server.app:create_app --factory "
        "--workers 2 --loop LOOP`, for contrast; `modelreg serve` sets TCP_NODELAY on every "
        "connection itself. MLflow's virtualenv has no uvloop (plain `pip install mlflow`), "
        "so its rows, the resolve series of the metadata run, show the stall with several "
        "workers.",
        "Machine: the reference machine is shared. Before each server starts the "
        f"benchmark waits (at most {_servers.QUIET_TIMEOUT:.0f} s) until the whole machine "
        f"has used under {100 * _servers.QUIET_CPU:.0f}% of a core for "
        f"{_servers.IDLE_WINDOWS} s in a row; 'other work' is the CPU time the machine "
        "spent (from /proc/stat) beyond the server's processes, this benchmark and its "
        "clients, over the time that server was measured: above 0.1 core, that server's "
        "figures were taken on a busier machine than the others.",
        "Memory: VmHWM of each server process read from /proc just before it is stopped "
        "(largest one, and the sum over its processes), and of the metadata client.",
    ]


SEARCH = "name LIKE 'm-01%'"


if __name__ == "__main__":
    main()
