"""Register and pull a 1 GiB file: throughput against single-core SHA-256, and peak memory.

    python bench/transfer.py            # print the tables
    python bench/transfer.py --write    # also record them in bench/results/transfer.md
    python bench/transfer.py --big      # add a 4 GiB file to the peak-memory check

Every throughput is measured ``--repeat`` times and reported as best and median. Register
and pull are compared with one pass of SHA-256 over the same file in one thread: both
must hash every byte, so that is the most either can hope for on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _machine import describe, file_system
from _report import Table, render, write_results
from _timing import best, median, timed
from modelreg import Config, EmbeddedRegistry
from modelreg.artifacts import files, hashing
from modelreg.service import transfer

MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = 4 * MIB
TREE_FILES = 64
TARGET_PCT = 70.0
MEMORY_TARGET_MB = 100.0
HERE = Path(__file__).resolve().parent
CHILD = HERE / "_child.py"
MODES = ((True, "fsync on (default)"), (False, "fsync off"))
MODEL = "bench-transfer"
# Long enough for a VM guest to hand freed memory back to its host (see NOTES).
IDLE_SECONDS = 3.0


@dataclass(frozen=True)
class Rate:
    """Repeated timings of one way of moving ``nbytes``."""

    label: str
    nbytes: int
    seconds: tuple[float, ...]

    def mbps(self, pick: Callable[[Sequence[float]], float]) -> float:
        """Throughput in MB/s of the sample ``pick`` chooses (best or median)."""
        return self.nbytes / pick(self.seconds) / MB


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print its tables and, with --write, record them."""
    args = parse_args(argv)
    size = args.size_mib * MIB
    args.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.data_dir, prefix="transfer-") as tmp:
        tables, notes = run(Path(tmp), size, args.repeat, args.big)
        facts = [*describe(), ("File system", file_system(Path(tmp))), settings(args)]
    print(render(tables, notes))
    if args.write:
        path = write_results("transfer", "Transfer benchmark", facts, tables, notes)
        print(f"wrote {path.relative_to(HERE.parent)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=HERE / ".data", help="where test files are made"
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the test file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--big", action="store_true", help="also check memory with 4 GiB")
    parser.add_argument("--write", action="store_true", help="write bench/results/transfer.md")
    return parser.parse_args(argv)


def settings(args: argparse.Namespace) -> tuple[str, str]:
    return (
        "Settings",
        f"{args.size_mib} MiB file, {args.repeat} runs per measurement; modelreg copies in "
        f"{hashing.CHUNK_SIZE // MIB} MiB chunks with {hashing.BUFFERS} buffers in flight, "
        "blobs written with O_DIRECT (then fdatasync) when fsync is on, pulled files of "
        f"{files.DIRECT_FROM // MIB} MiB and more written with O_DIRECT (then fdatasync), "
        f"{transfer.WORKERS} files at a time in a folder",
    )


def run(work: Path, size: int, repeat: int, big: bool) -> tuple[list[Table], list[str]]:
    """Every measurement, as tables and verdict notes."""
    source = work / "model.bin"
    make_random_file(source, size)
    baselines = measure_baselines(source, work / "copy.bin", repeat)
    sha = baselines[0]
    single = measure_registries(work / "file", source, repeat)
    tree = work / "tree"
    make_tree(tree, TREE_FILES, size // TREE_FILES)
    folder = measure_registries(work / "tree-registry", tree, repeat)
    peaks = measure_memory(work, source, big)
    tables = [
        rate_table(f"One {size // MIB} MiB file", [*baselines, *single], sha),
        rate_table(f"A folder of {TREE_FILES} files, {size // MIB} MiB in all", folder, sha),
        memory_table(peaks),
    ]
    return tables, verdicts(sha, single, peaks) + NOTES


NOTES = [
    "MB = 10^6 bytes. Source files are hot in the page cache (written just before; "
    "nothing is dropped from it), so reading them costs memory copies. With fsync on, "
    "register writes blobs with O_DIRECT, around the page cache, so the first pull of a "
    "version reads from the disk and later ones from the cache.",
    "After each register run the blob store is emptied and 16 random bytes at the start "
    "of every file are rewritten, so deduplication never skips the write. Pull reads one "
    "registered version again and again; its copy is deleted after each run, as is cp's.",
    "pull never calls fsync: the fsync setting changes register (O_DIRECT blob writes "
    "and fdatasync, SQLite synchronous=FULL) only. `cp` does not fsync; `cp + sync` adds "
    "an fsync of the copy.",
    "Writing into memory that has been free for a few seconds (the idle row) is several "
    "times slower on this machine, a KVM guest, than into memory freed just before: the "
    "guest most likely hands free pages back to its host, which faults them in again. "
    "Every write series here deletes its output right after each run, so its best run "
    "mostly reuses freed pages; first runs and medians can show the slow case.",
    "Peak memory is the VmHWM of a fresh child process, which it reports itself: Linux "
    "carries the parent's peak RSS over exec into the child's ru_maxrss, so "
    "getrusage(RUSAGE_CHILDREN) would show this benchmark's own peak instead.",
]


def make_random_file(path: Path, size: int) -> None:
    """Write ``size`` random bytes to ``path``."""
    with open(path, "wb") as out:
        for offset in range(0, size, CHUNK):
            out.write(os.urandom(min(CHUNK, size - offset)))


def make_tree(folder: Path, files: int, size: int) -> None:
    """A folder of ``files`` random files of ``size`` bytes each."""
    folder.mkdir()
    for index in range(files):
        make_random_file(folder / f"shard-{index:03d}.bin", size)


def sha256_file(path: Path) -> str:
    """One SHA-256 pass in this thread, reading 4 MiB chunks with readinto."""
    hasher = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as src:
        while n := src.readinto(buffer):
            hasher.update(view[:n])
    return hasher.hexdigest()


def write_chunks(path: Path, size: int, chunk: bytes) -> None:
    """Write ``size`` bytes to a new file, ``chunk`` after ``chunk``, in this thread."""
    view = memoryview(chunk)
    with open(path, "xb", buffering=0) as out:
        for offset in range(0, size, len(chunk)):
            out.write(view[: size - offset])


def measure(
    label: str, nbytes: int, action: Callable[[], object], cleanup: Callable[[], object], n: int
) -> Rate:
    """Time ``action`` ``n`` times, running the untimed ``cleanup`` after each."""
    seconds = []
    for _ in range(n):
        seconds.append(timed(action))
        cleanup()
    return Rate(label, nbytes, tuple(seconds))


def measure_baselines(source: Path, copy: Path, repeat: int) -> list[Rate]:
    """SHA-256 alone, writing alone, and cp: what register and pull are made of."""
    size = source.stat().st_size
    chunk = os.urandom(CHUNK)
    return [
        measure(
            "SHA-256 (1 thread, 4 MiB readinto)",
            size,
            lambda: sha256_file(source),
            lambda: None,
            repeat,
        ),
        measure(
            f"write only, {IDLE_SECONDS:.0f} s idle before each run",
            size,
            lambda: write_chunks(copy, size, chunk),
            lambda: unlink_and_idle(copy),
            repeat,
        ),
        measure(
            "write only (1 thread, 4 MiB chunks)",
            size,
            lambda: write_chunks(copy, size, chunk),
            copy.unlink,
            repeat,
        ),
        measure("cp", size, lambda: run_command("cp", source, copy), copy.unlink, repeat),
        measure(
            "cp + sync",
            size,
            lambda: copy_and_sync(source, copy),
            copy.unlink,
            repeat,
        ),
    ]


def unlink_and_idle(path: Path) -> None:
    path.unlink()
    time.sleep(IDLE_SECONDS)


def run_command(*argv: str | Path) -> None:
    subprocess.run([str(a) for a in argv], check=True)


def copy_and_sync(source: Path, copy: Path) -> None:
    """``cp`` then ``sync FILE``, which fsyncs the copy: a durable copy."""
    run_command("cp", source, copy)
    run_command("sync", copy)


def measure_registries(home: Path, source: Path, repeat: int) -> list[Rate]:
    """Register and pull ``source`` with fsync on (the default) and off."""
    rates = []
    for fsync, mode in MODES:
        rates += measure_registry(home / f"fsync-{fsync}", source, fsync, mode, repeat)
    return rates


def measure_registry(home: Path, source: Path, fsync: bool, mode: str, repeat: int) -> list[Rate]:
    """Register fresh bytes ``repeat`` times, then pull one registration ``repeat`` times,
    in a new registry at ``home`` that is removed afterwards."""
    size = total_size(source)
    dest = home / "pulled"
    with EmbeddedRegistry(Config.load(home=str(home), fsync=fsync)) as reg:
        register = measure(
            f"register, {mode}",
            size,
            lambda: reg.register(MODEL, source),
            lambda: forget(reg, source),
            repeat,
        )
        version = reg.register(MODEL, source)
        pull = measure(
            f"pull, {mode}",
            size,
            lambda: reg.pull(version.ref, dest),
            lambda: shutil.rmtree(dest),
            repeat,
        )
    shutil.rmtree(home)
    return [register, pull]


def forget(reg: EmbeddedRegistry, source: Path) -> None:
    """Empty the blob store and give ``source`` new bytes: the next register must store
    every byte again instead of finding it already stored."""
    for blob in list(reg.blobs.iter_blobs()):
        reg.blobs.delete(blob.sha256)
    refresh(source)


def refresh(path: Path) -> None:
    """Give every file under ``path`` new content: 16 random bytes at its start."""
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            with open(file, "r+b") as out:
                out.write(os.urandom(16))


def total_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def rate_table(title: str, rates: Sequence[Rate], sha: Rate) -> Table:
    """Throughput in MB/s and as a share of single-core SHA-256, best and median."""
    table = Table(
        title,
        ["operation", "best MB/s", "median MB/s", "best % of SHA-256", "median % of SHA-256"],
    )
    for rate in rates:
        table.rows.append(
            [
                rate.label,
                f"{rate.mbps(best):,.0f}",
                f"{rate.mbps(median):,.0f}",
                f"{100 * rate.mbps(best) / sha.mbps(best):.0f}%",
                f"{100 * rate.mbps(median) / sha.mbps(median):.0f}%",
            ]
        )
    return table


@dataclass(frozen=True)
class Peak:
    """Peak resident memory of one child process."""

    operation: str
    file: str
    mb: float


def measure_memory(work: Path, source: Path, big: bool) -> list[Peak]:
    """Peak RSS of fresh processes: importing modelreg, then registering and pulling."""
    peaks = [Peak("import modelreg only", "-", peak_rss_mb("import"))]
    files = [source]
    if big:
        files.append(work / "big.bin")
        make_random_file(files[-1], 4 * GIB)
    for path in files:
        home, dest = work / f"memory-{path.stem}", work / f"memory-{path.stem}-pulled"
        label = f"{path.stat().st_size // MIB:,} MiB"
        for operation, argument in (("register", path), ("pull", dest)):
            peaks.append(Peak(operation, label, peak_rss_mb(operation, str(home), str(argument))))
        shutil.rmtree(home)
        shutil.rmtree(dest)
    return peaks


def memory_table(peaks: Sequence[Peak]) -> Table:
    """Peak RSS per child, and how far above the import-only baseline it is."""
    baseline = peaks[0].mb
    table = Table("Peak memory of one process", ["operation", "file", "peak RSS MB", "over import"])
    for peak in peaks:
        table.rows.append(
            [peak.operation, peak.file, f"{peak.mb:.0f}", f"+{peak.mb - baseline:.0f}"]
        )
    return table


def peak_rss_mb(*args: str) -> float:
    """Peak resident memory, in MB, of ``_child.py ARGS`` run with default settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    child = subprocess.run(
        [sys.executable, str(CHILD), *args], env=env, check=True, capture_output=True, text=True
    )
    return int(child.stdout.split()[-1]) * 1024 / MB


def verdicts(sha: Rate, single: Sequence[Rate], peaks: Sequence[Peak]) -> list[str]:
    """One line per target: the default settings' register and pull, and peak memory."""
    lines = []
    for rate in single[:2]:
        pct = 100 * rate.mbps(best) / sha.mbps(best)
        met = "met" if pct >= TARGET_PCT else "NOT met"
        lines.append(
            f"Target {rate.label} >= {TARGET_PCT:.0f}% of single-core SHA-256: {met} "
            f"(best {pct:.0f}%, median {100 * rate.mbps(median) / sha.mbps(median):.0f}%)."
        )
    peak = max(p.mb for p in peaks)
    met = "met" if peak < MEMORY_TARGET_MB else "NOT met"
    lines.append(f"Target peak RSS < {MEMORY_TARGET_MB:.0f} MB: {met} (largest {peak:.0f} MB).")
    return lines


if __name__ == "__main__":
    main()
