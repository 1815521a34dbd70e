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
import fcntl
import json
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import time
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
FRESH_PAUSE = 3.0  # seconds: long enough for freed memory to go back to the host
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
        # The servers take turns, round after round: the machine's speed drifts and the
        # host takes cores now and then, and turns give every server the same chances.
        servers: list[tuple[str, Path | str, int | None, bool]] = [
            ("modelreg", sys.executable, None, True),
            ("modelreg", sys.executable, None, False),
            ("mlflow", mlflow, None, True),
            ("mlflow", mlflow, 1, True),
        ]
        rounds: list[list[ServerRun]] = []
        for number in range(args.rounds):
            rounds.append(
                [
                    measure_server(
                        kind,
                        python,
                        workers,
                        work / f"server-{i}-{number}",
                        files,
                        args,
                        fsync=fsync,
                    )
                    for i, (kind, python, workers, fsync) in enumerate(servers)
                ]
            )
        runs = [merge(list(turns)) for turns in zip(*rounds, strict=True)]
        facts.append(("File system", file_system(work)))
    facts.append(settings(args, sizes))
    tables = [rate_table(size, baselines[size], runs) for size in sizes]
    tables.append(memory_table(runs, sizes))
    machine = Table("Machine during each measurement", CONDITIONS_HEADERS)
    machine.rows += [
        run.conditions.row(f"{run.label}, round {number}")
        for number, turn in enumerate(rounds, start=1)
        for run in turn
        if run.conditions
    ]
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
    parser.add_argument(
        "--rounds", type=int, help="turns of all four servers, pooled (2; --quick 1)"
    )
    parser.add_argument("--quick", action="store_true", help="20 MB and 200 MB files, 1 round")
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
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
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
        f"{args.repeat} round trips each in each of {args.rounds} rounds (the servers take "
        "turns; every round trip counts toward best and median). modelreg: `modelreg serve` "
        "with its defaults, "
        "SQLite and blobs in a fresh MODELREG_HOME. MLflow: `mlflow server "
        "--backend-store-uri sqlite:///… --artifacts-destination DIR --serve-artifacts`, "
        "default workers and `--workers 1`, MLFLOW_DISABLE_TELEMETRY=true, its client's "
        "defaults (no multipart upload). Each server is measured once idle.",
    )


def size_label(size: int) -> str:
    return f"{size // GIB} GiB" if size % GIB == 0 else f"{size / MB:,.0f} MB"


def measure_baselines(source: Path, work: Path, repeat: int) -> list[Rate]:
    """SHA-256 in one thread, cp of the same file, and the two ways a server stores it:
    a plain write into a new file and a durable write."""
    size = source.stat().st_size
    copy = work / "copy.bin"
    sha, cp, fresh, durable = [], [], [], []
    for _ in range(repeat):
        sha.append(timed(lambda: sha256_file(source)))
        cp.append(timed(lambda: subprocess.run(["cp", str(source), str(copy)], check=True)))
        copy.unlink()
        # Memory just freed is handed out again cheaply, while memory the system has not
        # touched for a while can cost much more to fill (on a virtual machine the host
        # may have taken it back). A server storing a new upload gets the latter; so the
        # plain write waits, like the durable one after it, before writing its copy.
        time.sleep(FRESH_PAUSE)
        fresh.append(timed(lambda: plain_copy(source, copy)))
        copy.unlink()
        time.sleep(FRESH_PAUSE)
        durable.append(timed(lambda: durable_copy(source, copy)))
        copy.unlink()
    return [
        Rate("SHA-256 (1 thread)", size, tuple(sha)),
        Rate("cp", size, tuple(cp)),
        Rate("write a new file (page cache, no flush)", size, tuple(fresh)),
        Rate("durable write (O_DIRECT, fdatasync)", size, tuple(durable)),
    ]


def plain_copy(source: Path, dest: Path) -> None:
    """Copy ``source`` into a new file in 4 MiB reads and writes, flushing nothing."""
    buffer = bytearray(4 * MIB)
    with open(source, "rb", buffering=0) as src, open(dest, "xb", buffering=0) as out:
        while n := src.readinto(buffer):
            view = memoryview(buffer)[:n]
            while view:
                view = view[out.write(view) :]


def durable_copy(source: Path, dest: Path) -> None:
    """Copy ``source`` to disk as a durable blob write does: whole 4 MiB blocks with
    O_DIRECT (the tail buffered), then fdatasync. No hashing: the disk's own bound."""
    block = 4 * MIB
    buffer = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(dest, flags | getattr(os, "O_DIRECT", 0), 0o644)
    try:
        with open(source, "rb", buffering=0) as src:
            while n := src.readinto(buffer):
                if n % 4096:
                    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
                view = memoryview(buffer)[:n]
                while view:
                    view = view[os.write(fd, view) :]
        os.fdatasync(fd)
    finally:
        os.close(fd)


def measure_server(
    kind: str,
    python: Path | str,
    workers: int | None,
    data: Path,
    files: dict[int, Path],
    args: argparse.Namespace,
    *,
    fsync: bool = True,
) -> ServerRun:
    """Start one server; for each file, a fresh client process does every round trip.
    ``fsync`` False runs modelreg without flushing blobs, as MLflow's server runs."""
    quiet_wait = _servers.wait_machine_quiet()
    port = _servers.free_port()
    if kind == "mlflow":
        context = _servers.mlflow_server(Path(python), data, port, workers)
    else:
        context = _servers.modelreg_server(data, port, workers, fsync=fsync)
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


def merge(turns: Sequence[ServerRun]) -> ServerRun:
    """One server's rounds as one run: every round trip of every round, the largest peaks."""
    first = turns[0]
    merged = ServerRun(first.label, {}, {}, {})
    for size in first.upload:
        for way, into in (("upload", merged.upload), ("download", merged.download)):
            seconds = tuple(t for run in turns for t in run.rate(way, size).seconds)
            into[size] = Rate(first.rate(way, size).label, size, seconds)
        merged.client_kib[size] = max(run.client_kib[size] for run in turns)
    peaks = [run.memory for run in turns if run.memory is not None]
    merged.memory = max(peaks, key=lambda memory: memory.largest_peak_kib) if peaks else None
    return merged


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
    ours, loose = runs[0], runs[1]
    table = Table(
        f"One {size_label(size)} file",
        [
            "operation",
            "best MB/s",
            "median MB/s",
            "% of SHA-256",
            "modelreg x (best)",
            "modelreg fsync off x (best)",
        ],
    )
    for rate in baselines:
        table.rows.append(rate_row(rate, sha, "-", "-"))
    for run in runs:
        for way in ("upload", "download"):
            rate = run.rate(way, size)
            mine, other = ours.rate(way, size).mbps(best), loose.rate(way, size).mbps(best)
            theirs = rate.mbps(best)
            table.rows.append(rate_row(rate, sha, f"{mine / theirs:.1f}", f"{other / theirs:.1f}"))
    return table


def rate_row(rate: Rate, sha: Rate, *ratios: str) -> list[str]:
    return [
        rate.label,
        f"{rate.mbps(best):,.0f}",
        f"{rate.mbps(median):,.0f}",
        f"{100 * rate.mbps(best) / sha.mbps(best):.0f}%",
        *ratios,
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
    """The 3x target each way against the faster of MLflow's two settings: for modelreg's
    durable default, and for modelreg with MLflow's durability (fsync off); each next to
    what bounds a verified transfer on this machine."""
    ours, loose, *theirs = runs
    lines = []
    for size in sizes:
        sha = baselines[size][0].mbps(best)
        plain = baselines[size][2].mbps(best)
        disk = baselines[size][3].mbps(best)
        for way in ("upload", "download"):
            fastest = max(run.rate(way, size).mbps(best) for run in theirs)
            goal = TARGET * fastest
            for run, what in ((ours, "durable default"), (loose, "fsync off")):
                mine = run.rate(way, size).mbps(best)
                ratio = mine / fastest
                lines.append(
                    f"Target {way} of {size_label(size)} >= {TARGET:.0f}x MLflow's artifact "
                    f"proxy (its faster setting), modelreg {what}: "
                    f"{'met' if ratio >= TARGET else 'NOT met'} ({mine:,.0f} vs "
                    f"{fastest:,.0f} MB/s, {ratio:.1f}x; modelreg ran at "
                    f"{100 * mine / sha:.0f}% of single-core SHA-256). 3x MLflow would be "
                    f"{goal:,.0f} MB/s: {100 * goal / sha:.0f}% of single-core SHA-256, "
                    f"{100 * goal / plain:.0f}% of a plain write into a new file and "
                    f"{100 * goal / disk:.0f}% of a durable write on this machine."
                )
    return lines


NOTES = [
    "MB = 10^6 bytes. The source file is hot in the page cache (written just before), "
    "so reading it costs memory copies. MLflow's client writes a download into the page "
    "cache and does not flush it; modelreg's pull writes files of 64 MiB and more (both "
    "files here) with direct I/O and flushes them, so they are on disk when it returns.",
    "Before each upload the file's first 16 bytes are rewritten, so modelreg never "
    "finds the blob already stored; every MLflow upload goes to a new run. Downloads "
    "go to a fresh folder that is removed after each run, untimed.",
    "modelreg's register uploads the file and commits the version; pull "
    "downloads it and checks its SHA-256. MLflow's log_artifact is one streamed HTTP PUT "
    "through the tracking server to its artifact destination, and download_artifacts "
    "lists the run's artifacts and then streams a GET; neither side of MLflow hashes.",
    "MLflow's server writes uploads through the page cache and never flushes them; "
    "modelreg's default flushes every blob to disk before the version commits (a crash "
    "cannot lose a registered model), so a durable upload is bounded by the 'durable "
    "write' row, the disk's own speed with the same block size and no hashing. The "
    "'fsync off' rows run `modelreg serve` with MODELREG_FSYNC=false: MLflow's "
    "durability, the like-for-like comparison.",
    "'write a new file' is the cheapest way to store the bytes at all: a plain copy into "
    "a new file, no network, no hashing, nothing flushed, started a few seconds after the "
    "last file was deleted. On a virtual machine whose host takes back memory the guest "
    "freed, filling new page-cache pages is far slower than a memory copy ('cp', which "
    "reuses the pages of the copy deleted just before it). MLflow's server stores an "
    "upload into such pages, and its client a download, as does modelreg's server with "
    "fsync off; modelreg's durable server and its pull of a large file write around the "
    "page cache, bounded by the 'durable write' row instead. A blob written around the "
    "page cache is not in it, so the durable server sends it from direct reads of the "
    "disk; with fsync off the blob is still in the page cache and goes out with sendfile.",
    "modelreg verifies every byte with SHA-256 on one core at each end, so single-core "
    "SHA-256 bounds it each way; MLflow's proxy verifies nothing. Upload: the client asks "
    "first whether a stored blob has the file's size and first MiB; none has (the bytes "
    "are new), so it sends the file while a thread hashes it, and the server hashes what "
    "it receives; the two digests must agree. Download: the client hashes while it "
    "receives.",
    "Machine: before each server starts the benchmark waits for the shared machine to "
    "be quiet; 'other work' is the CPU time the machine spent beyond the server, this "
    "benchmark and its clients while that server was measured (see server.md's notes).",
    "Each (server, file) pair is one fresh client process, whose peak RSS is shown; the "
    "server's is read from /proc just before it is stopped, after every file.",
]


if __name__ == "__main__":
    main()
