"""Artifact round trip through modelreg's server and MLflow's artifact proxy, side by side.

    python bench/server_transfer.py            # 200 MB and 2 GiB files (about 10 minutes)
    python bench/server_transfer.py --write    # also record bench/results/server_transfer.md
    python bench/server_transfer.py --quick    # 20 MB and 200 MB: a quick look

Each file is uploaded and downloaded again through each project's own Python client:
modelreg's ``reg.register(name, file)`` and ``reg.pull(ref, dest)`` against ``modelreg
serve``; MLflow's ``MlflowClient.log_artifact`` into a run whose artifact URI is
``mlflow-artifacts:/…`` and ``download_artifacts`` back, against ``mlflow server
--serve-artifacts`` with its default worker count and with one worker. Next to them, one
pass of SHA-256 over the file in one thread and ``cp`` of it. Every figure is the best
and the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _servers
from _machine import describe, file_system
from _report import Table, render, write_results
from _servers import Memory
from _timing import best, median, timed
from server import (
    CONDITIONS_HEADERS,
    Conditions,
    revision_moved,
    software,
    source_revision,
)
from transfer import make_random_file, sha256_file

HERE = Path(__file__).resolve().parent
MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024 * MIB
TARGET = 3.0
TITLE = "Server transfer benchmark: modelreg and MLflow's artifact proxy"


@dataclass(frozen=True)
class Rate:
    """Repeated timings of moving ``nbytes`` one way."""

    label: str
    nbytes: int
    seconds: tuple[float, ...]

    def mbps(self, pick: Callable[[Sequence[float]], float]) -> float:
        return self.nbytes / pick(self.seconds) / MB


@dataclass
class ServerRun:
    """One server's round trips of every file, and its memory."""

    label: str
    upload: dict[int, Rate]
    download: dict[int, Rate]
    client_kib: dict[int, int]
    memory: Memory | None = None
    conditions: Conditions | None = None

    def rate(self, way: str, size: int) -> Rate:
        return (self.upload if way == "upload" else self.download)[size]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print its tables and, with --write, record them."""
    args = parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow = _servers.mlflow_python(args.mlflow_spec)
    sizes = [int(s) for s in args.sizes]
    check_space(args.data_dir, max(sizes), args.repeat)
    start = source_revision()
    facts = [*describe(), *software(mlflow, start)]
    with tempfile.TemporaryDirectory(dir=args.data_dir, prefix="server-transfer-") as tmp:
        work = Path(tmp)
        files = {}
        for size in sizes:
            files[size] = work / f"model-{size}.bin"
            make_random_file(files[size], size)
        baselines = {
            size: measure_baselines(path, work, args.repeat) for size, path in files.items()
        }
        runs = [
            measure_server("modelreg", sys.executable, None, work / "modelreg", files, args),
            measure_server("mlflow", mlflow, None, work / "mlflow-default", files, args),
            measure_server("mlflow", mlflow, 1, work / "mlflow-1", files, args),
        ]
        facts.append(("File system", file_system(work)))
    facts.append(settings(args, sizes))
    tables = [rate_table(size, baselines[size], runs) for size in sizes]
    tables.append(memory_table(runs, sizes))
    machine = Table("Machine during each measurement", CONDITIONS_HEADERS)
    machine.rows += [run.conditions.row(run.label) for run in runs if run.conditions]
    tables.append(machine)
    notes = verdicts(runs, sizes, baselines) + NOTES + revision_moved(start)
    print(render(tables, notes))
    if args.write:
        path = write_results("server_transfer", TITLE, facts, tables, notes)
        print(f"wrote {path.relative_to(HERE.parent)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: text.split(","),
        default=[str(200 * MB), str(2 * GIB)],
        help="comma-separated file sizes in bytes (default: 200 MB and 2 GiB)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="round trips per file")
    parser.add_argument("--quick", action="store_true", help="20 MB and 200 MB files")
    parser.add_argument(
        "--mlflow-spec", default="mlflow", help="what to pip install in bench/.venv-mlflow"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=HERE / ".data", help="where test files are made"
    )
    parser.add_argument(
        "--write", action="store_true", help="write bench/results/server_transfer.md"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [str(20 * MB), str(200 * MB)]
    return args


def check_space(folder: Path, largest: int, repeat: int) -> None:
    """Refuse to start without room for the files, a server's copies and a download."""
    need = largest * (repeat + 3)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise SystemExit(f"need {need / GIB:.1f} GiB free under {folder}, have {free / GIB:.1f}")


def settings(args: argparse.Namespace, sizes: Sequence[int]) -> tuple[str, str]:
    return (
        "Settings",
        f"files of {', '.join(size_label(s) for s in sizes)} of random bytes, "
        f"{args.repeat} round trips each. modelreg: `modelreg serve` with its defaults, "
        "SQLite and blobs in a fresh MODELREG_HOME. MLflow: `mlflow server "
        "--backend-store-uri sqlite:///… --artifacts-destination DIR --serve-artifacts`, "
        "default workers and `--workers 1`, MLFLOW_DISABLE_TELEMETRY=true, its client's "
        "defaults (no multipart upload). Each server is measured once idle.",
    )


def size_label(size: int) -> str:
    return f"{size // GIB} GiB" if size % GIB == 0 else f"{size / MB:,.0f} MB"


def measure_baselines(source: Path, work: Path, repeat: int) -> list[Rate]:
    """SHA-256 in one thread and cp of the same file."""
    size = source.stat().st_size
    copy = work / "copy.bin"
    sha, cp = [], []
    for _ in range(repeat):
        sha.append(timed(lambda: sha256_file(source)))
        cp.append(timed(lambda: subprocess.run(["cp", str(source), str(copy)], check=True)))
        copy.unlink()
    return [
        Rate("SHA-256 (1 thread)", size, tuple(sha)),
        Rate("cp", size, tuple(cp)),
    ]


def measure_server(
    kind: str,
    python: Path | str,
    workers: int | None,
    data: Path,
    files: dict[int, Path],
    args: argparse.Namespace,
) -> ServerRun:
    """Start one server; for each file, a fresh client process does every round trip."""
    quiet_wait = _servers.wait_machine_quiet()
    port = _servers.free_port()
    if kind == "mlflow":
        context = _servers.mlflow_server(Path(python), data, port, workers)
    else:
        context = _servers.modelreg_server(data, port, workers)
    with context as server:
        before = _servers.snapshot(server)
        print(f"{server.label}: ready", file=sys.stderr, flush=True)
        run = ServerRun(server.label, {}, {}, {})
        for size, path in files.items():
            downloads = data / "downloads"
            downloads.mkdir()
            arguments = {"file": str(path), "work": str(downloads), "repeat": args.repeat}
            result = client(python, kind, server.url, arguments, data)
            run.upload[size] = Rate(f"{server.label}: upload", size, tuple(result["upload"]))
            run.download[size] = Rate(f"{server.label}: download", size, tuple(result["download"]))
            run.client_kib[size] = int(result["peak_kib"])
            shutil.rmtree(downloads)
            print(
                f"{server.label}: {size_label(size)} up {run.upload[size].mbps(best):,.0f} "
                f"down {run.download[size].mbps(best):,.0f} MB/s",
                file=sys.stderr,
                flush=True,
            )
            _servers.wait_idle(server)
        run.conditions = Conditions(quiet_wait, before, _servers.snapshot(server))
        run.memory = server.memory()
    shutil.rmtree(data)
    return run


def client(
    python: Path | str, kind: str, url: str, arguments: dict[str, Any], data: Path
) -> dict[str, Any]:
    """The ``transfer`` scenario of ``_clients.py`` in a fresh process; its JSON result."""
    log = data / "client-transfer.log"
    with open(log, "ab") as err:
        child = subprocess.run(
            [str(python), str(_servers.CLIENTS), kind, url, "transfer", json.dumps(arguments)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=_servers.base_env(),
            check=False,
        )
    if child.returncode != 0:
        raise RuntimeError(f"{kind} transfer client failed:\n{_servers.tail(log)}")
    result: dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    return result


def rate_table(size: int, baselines: Sequence[Rate], runs: Sequence[ServerRun]) -> Table:
    """MB/s best and median, as a share of SHA-256, and modelreg's multiple of each."""
    sha = baselines[0]
    ours = runs[0]
    table = Table(
        f"One {size_label(size)} file",
        ["operation", "best MB/s", "median MB/s", "% of SHA-256", "modelreg x (best)"],
    )
    for rate in baselines:
        table.rows.append(rate_row(rate, sha, "-"))
    for run in runs:
        for rate, mine in (
            (run.upload[size], ours.upload[size]),
            (run.download[size], ours.download[size]),
        ):
            table.rows.append(rate_row(rate, sha, f"{mine.mbps(best) / rate.mbps(best):.1f}"))
    return table


def rate_row(rate: Rate, sha: Rate, ratio: str) -> list[str]:
    return [
        rate.label,
        f"{rate.mbps(best):,.0f}",
        f"{rate.mbps(median):,.0f}",
        f"{100 * rate.mbps(best) / sha.mbps(best):.0f}%",
        ratio,
    ]


def memory_table(runs: Sequence[ServerRun], sizes: Sequence[int]) -> Table:
    table = Table(
        "Memory (peak RSS, VmHWM, MB)",
        [
            "server",
            "server: largest process",
            "server: all processes",
            *(f"client, {size_label(s)}" for s in sizes),
        ],
    )
    for run in runs:
        assert run.memory is not None
        table.rows.append(
            [
                run.label,
                f"{run.memory.largest_peak_kib * 1024 / MB:.0f}",
                f"{run.memory.sum_of_peaks_kib * 1024 / MB:.0f}",
                *(f"{run.client_kib[s] * 1024 / MB:.0f}" for s in sizes),
            ]
        )
    return table


def verdicts(
    runs: Sequence[ServerRun], sizes: Sequence[int], baselines: dict[int, list[Rate]]
) -> list[str]:
    """The 3x target each way, against the faster of MLflow's two settings."""
    ours, *theirs = runs
    lines = []
    for size in sizes:
        for way in ("upload", "download"):
            mine = ours.rate(way, size).mbps(best)
            fastest = max(run.rate(way, size).mbps(best) for run in theirs)
            ratio = mine / fastest
            sha = baselines[size][0].mbps(best)
            lines.append(
                f"Target {way} of {size_label(size)} >= {TARGET:.0f}x MLflow's artifact proxy "
                f"(its faster setting): {'met' if ratio >= TARGET else 'NOT met'} "
                f"({mine:,.0f} vs {fastest:,.0f} MB/s, {ratio:.1f}x; modelreg at "
                f"{100 * mine / sha:.0f}% of single-core SHA-256, where 3x MLflow would be "
                f"{100 * TARGET * fastest / sha:.0f}%)."
            )
    return lines


NOTES = [
    "MB = 10^6 bytes. The source file is hot in the page cache (written just before), "
    "so reading it costs memory copies; downloads are written into the page cache "
    "(nothing here calls fsync but the servers' own durable writes).",
    "Before each upload the file's first 16 bytes are rewritten, so modelreg never "
    "finds the blob already stored; every MLflow upload goes to a new run. Downloads "
    "go to a fresh folder that is removed after each run, untimed.",
    "modelreg's register hashes the file, uploads it and commits the version; pull "
    "downloads it and checks its SHA-256. MLflow's log_artifact is one streamed HTTP PUT "
    "through the tracking server to its artifact destination, and download_artifacts "
    "lists the run's artifacts and then streams a GET; neither side of MLflow hashes.",
    "modelreg verifies every byte with SHA-256 on one core at each end (the client "
    "hashes a file before uploading it, the server while receiving it; the client while "
    "pulling it), so single-core SHA-256 bounds it each way; MLflow's proxy verifies "
    "nothing.",
    "Machine: before each server starts the benchmark waits for the shared machine to "
    "be quiet; 'other work' is the CPU time the machine spent beyond the server, this "
    "benchmark and its clients while that server was measured (see server.md's notes).",
    "Each (server, file) pair is one fresh client process, whose peak RSS is shown; the "
    "server's is read from /proc just before it is stopped, after every file.",
]


if __name__ == "__main__":
    main()
