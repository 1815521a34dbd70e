"""Instructions per server request, counted by callgrind: a cost the machine's noise does
not move.

    python bench/request_cost.py                        # this checkout, prints a table
    python bench/request_cost.py --against REV --write  # and REV beside it; records
                                                        # bench/results/request_cost.md

Wall-clock figures on a shared virtual machine drift by a quarter within the hour, which
is as much as a change to the request path saves. Instruction counts do not drift: the
server app runs in one process, driven through ASGI without sockets, under ``valgrind
--tool=callgrind``, once with no measured requests and once with ``--requests`` of one
kind; the difference over that number is one request. Counted: everything in Python from
the ASGI app down (middleware, routing, FastAPI, the service layer, SQLAlchemy, SQLite)
and the hop to a worker thread. Not counted: uvicorn's HTTP parsing, the kernel, and
time spent waiting (fsync, thread wake-ups). ``--against REV`` checks REV out into a
temporary worktree and counts it the same way, in the same run.

Needs valgrind (Debian's package). Each count takes about a minute; two run at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TINY = b"tiny model for request costs\n"
TINY_SHA = hashlib.sha256(TINY).hexdigest()
SEARCH = "/api/v1/models?filter=name%20LIKE%20%27m-%25%27&page_size=100"
KINDS = {
    "probe": "GET /healthz",
    "get_model": "GET /api/v1/models/base",
    "create_model": "POST /api/v1/models",
    "create_version": "POST /api/v1/models/base/versions (one stored file)",
    "search": "GET /api/v1/models, a 100-model page",
}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        kind, count, home = args.child
        child(kind, int(count), Path(home))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    from _machine import describe
    from _report import Table, write_results
    from server import source_revision

    sources = {"this checkout": ROOT / "src"}
    with tempfile.TemporaryDirectory(prefix="modelreg-cost-") as tmp:
        if args.against:
            worktree = Path(tmp) / "against"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "--detach",
                    str(worktree),
                    args.against,
                ],
                check=True,
                capture_output=True,
            )
            short = revision(args.against)
            label = args.against if short.startswith(args.against) else f"{args.against} ({short})"
            sources[label] = worktree / "src"
        try:
            costs = measure(sources, args.requests, Path(tmp))
        finally:
            if args.against:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                    check=False,
                    capture_output=True,
                )
    labels = list(sources)
    headers = ["request", *(f"{label}, M instructions" for label in labels)]
    if len(labels) == 2:
        headers.append("this checkout vs other")
    table = Table("Instructions per request (millions)", headers)
    for kind, what in KINDS.items():
        row = [what, *(f"{costs[label][kind] / 1e6:.2f}" for label in labels)]
        if len(labels) == 2:
            row.append(f"{costs[labels[0]][kind] / costs[labels[1]][kind]:.2f}x")
        table.rows.append(row)
    notes = [
        f"Each count: the app over a fresh SQLite registry with a model 'base', one stored "
        f"blob and 100 models m-000 to m-099 (the search's page), then {args.requests} "
        "requests of one kind, minus the same run with none. Webhook delivery is off in "
        "these runs (its thread polls on the clock, and under valgrind the clock is slow).",
        "Counted by `valgrind --tool=callgrind` (total instructions of the process). "
        "Waiting is not an instruction: fsync, thread wake-ups and the network cost time "
        "on top of these, and that time is what bench/server.py measures.",
    ]
    facts = [
        *describe(),
        ("Revision", source_revision()),
        ("Requests per count", str(args.requests)),
    ]
    print(table.markdown())
    if args.write:
        path = write_results(
            "request_cost", "Server request cost in instructions", facts, [table], notes
        )
        print(f"wrote {path.relative_to(ROOT)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per count")
    parser.add_argument("--against", help="a git revision to count beside this checkout")
    parser.add_argument("--write", action="store_true", help="record bench/results/")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "N", "HOME"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def revision(rev: str) -> str:
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True
    )
    return found.stdout.strip() or "unknown"


def measure(sources: dict[str, Path], requests: int, tmp: Path) -> dict[str, dict[str, float]]:
    """Instructions per request, by source label and kind."""
    jobs = [
        (label, kind, 0 if kind == "none" else requests)
        for label in sources
        for kind in ["none", *KINDS]
    ]

    index = {label: i for i, label in enumerate(sources)}

    def run(job: tuple[str, str, int]) -> int:
        label, kind, n = job
        return instructions(sources[label], kind, n, tmp / f"{index[label]}-{kind}")

    with ThreadPoolExecutor(2) as pool:
        totals = dict(zip(jobs, pool.map(run, jobs), strict=True))
    costs: dict[str, dict[str, float]] = {}
    for label in sources:
        base = totals[(label, "none", 0)]
        costs[label] = {kind: (totals[(label, kind, requests)] - base) / requests for kind in KINDS}
    return costs


def instructions(source: Path, kind: str, n: int, work: Path) -> int:
    """Total instructions of one child run under callgrind."""
    work.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "MODELREG_AUTH": "off",
        "MODELREG_WEBHOOK_DELIVERY": "false",
    }
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={work / 'callgrind.out'}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            kind,
            str(n),
            str(work / "home"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run {kind} x{n} failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def child(kind: str, count: int, home: Path) -> None:
    """Build the app over a fresh registry, then send ``count`` requests of ``kind``."""
    os.environ["MODELREG_HOME"] = str(home)
    from modelreg.server.app import create_app

    app = create_app()

    async def request(method: str, target: str, body: bytes = b"") -> int:
        path, _, query = target.partition("?")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"modelreg.test"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
        }
        pending = [{"type": "http.request", "body": body, "more_body": False}]
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop()
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        return status[0]

    def post(target: str, data: dict[str, Any]) -> Coroutine[Any, Any, int]:
        return request("POST", target, json.dumps(data).encode())

    version = {"files": [{"path": "model.bin", "size": len(TINY), "sha256": TINY_SHA}]}
    calls: dict[str, Callable[[int], Coroutine[Any, Any, int]]] = {
        "probe": lambda i: request("GET", "/healthz"),
        "get_model": lambda i: request("GET", "/api/v1/models/base"),
        "create_model": lambda i: post("/api/v1/models", {"name": f"new-{i}"}),
        "create_version": lambda i: post("/api/v1/models/base/versions", version),
        "search": lambda i: request("GET", SEARCH),
    }

    async def run() -> None:
        async with app.router.lifespan_context(app):
            assert await post("/api/v1/models", {"name": "base"}) == 201
            stored = await request("PUT", f"/api/v1/blobs/{TINY_SHA}", TINY)
            assert stored in (200, 201), stored
            for i in range(100):
                assert await post("/api/v1/models", {"name": f"m-{i:03d}"}) == 201
            for i in range(count):
                status = await calls[kind](i)
                assert status in (200, 201), (kind, status)

    asyncio.run(run())


if __name__ == "__main__":
    main()
