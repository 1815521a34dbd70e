"""Peak memory of client and server while a large file goes up to a server and back.

    python bench/server_memory.py --write            # 64 MiB, 1 GiB and 5 GiB (~15 GiB free)
    python bench/server_memory.py --sizes 67108864   # a quick look

For each size a fresh ``modelreg serve`` (default settings) gets the file registered by
one fresh client process (``reg.register``) and pulled back by another (``reg.pull``).
The table shows each client's peak RSS (VmHWM) and the server's largest worker peak.
Streaming means the peaks stay flat as the file grows; the bytes are verified on both
ends as in normal use.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import _servers
from _machine import describe, file_system
from _report import Table, render, write_results
from transfer import make_random_file

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
GIB = 1024 * MIB
TITLE = "Server memory: a file up to modelreg serve and back"

CLIENT = """
import json, sys, time
from pathlib import Path
import modelreg
url, operation, path = sys.argv[1:4]
start = time.perf_counter()
with modelreg.connect(url) as reg:
    if operation == "register":
        reg.register("memory", path)
    else:
        reg.pull("memory@latest", path)
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmHWM:"))
print(json.dumps({"peak_kib": peak, "seconds": seconds}))
"""


def client(url: str, operation: str, path: Path) -> dict[str, float]:
    """Run one operation in a fresh client process; its peak RSS and duration."""
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, url, operation, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=_servers.base_env(),
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(size: int, data: Path) -> list[str]:
    """One row: size, client peaks, server peak and MB/s each way."""
    source = data / f"memory-{size}.bin"
    make_random_file(source, size)
    try:
        with _servers.modelreg_server(data / f"server-{size}", _servers.free_port()) as server:
            up = client(server.url, "register", source)
            dest = data / f"pulled-{size}"
            down = client(server.url, "pull", dest)
            server_peak = server.memory().largest_peak_kib
            shutil.rmtree(dest)
    finally:
        source.unlink(missing_ok=True)
    return [
        f"{size / MIB:,.0f} MiB",
        f"{up['peak_kib'] / 1024:.0f}",
        f"{down['peak_kib'] / 1024:.0f}",
        f"{server_peak / 1024:.0f}",
        f"{size / up['seconds'] / 1e6:,.0f}",
        f"{size / down['seconds'] / 1e6:,.0f}",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="server-memory-", dir=args.data_dir))
    table = Table(
        "Peak resident memory (VmHWM, MiB) and throughput (MB/s)",
        ["file", "client register", "client pull", "server", "up MB/s", "down MB/s"],
    )
    try:
        for size in args.sizes:
            table.rows.append(measure(size, data))
            print(table.rows[-1], file=sys.stderr)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    notes = [
        f"Test files on {file_system(args.data_dir)}, random bytes, hot in the page cache.",
        "Each size gets a fresh server (`modelreg serve`, default settings: fsync on, one "
        "worker per core) and fresh client processes, so each peak belongs to that size.",
        "The server column is the largest peak among the server's processes (the parent "
        "supervisor and its workers).",
    ]
    print(render([table], notes))
    if args.write:
        path = write_results("server_memory", TITLE, describe(), [table], notes)
        print(f"wrote {path.relative_to(HERE.parent)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(s) for s in text.split(",")],
        default=[64 * MIB, GIB, 5 * GIB],
        help="comma-separated sizes in bytes (default 64 MiB, 1 GiB, 5 GiB)",
    )
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data")
    parser.add_argument("--write", action="store_true", help="write bench/results/server_memory.md")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
