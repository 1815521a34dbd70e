"""A large file up to an S3 bucket and back: modelreg's S3 store next to plain S3 clients.

    python bench/s3_transfer.py            # one 2 GiB file, 3 round trips per client
    python bench/s3_transfer.py --write    # also record bench/results/s3_transfer.md
    python bench/s3_transfer.py --quick    # 200 MB, 2 round trips: a quick look

One S3-protocol server runs on loopback for the whole run (moto's standalone server,
``python -m moto.server``: the one the tests use, installable from PyPI). In the same
run, each round trip is a fresh client process that uploads the file and downloads it
again:

- ``boto3``: ``upload_file`` with boto3's default transfer settings (s3transfer:
  8 MiB parts, 10 threads) and one streamed ``get_object``, CRC32 checksums off as in
  modelreg's own client: the plain S3 client modelreg is built on
  (``download_file``'s ranged GETs each make moto read the whole object: minutes per
  GiB, which would measure moto, not the client);
- ``obstore``: ``obstore.put`` / ``obstore.get`` (Rust, object_store), the faster
  library the choice was made against;
- ``modelreg embedded``: ``reg.register`` / ``reg.pull`` with ``artifacts="s3://…"``
  (hash, multipart upload straight to the digest key; streamed, verified download);
- ``modelreg serve``: the same calls through ``modelreg serve`` over the bucket, where
  bytes travel through presigned URLs and the server re-reads each upload to verify it.

Peak RSS (VmHWM) of every client process, of ``modelreg serve`` and of the S3 server;
the other load on the machine while each client was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

import _servers
from _machine import describe, file_system
from _report import Table, render, write_results
from _timing import best, median, timed
from server import CONDITIONS_HEADERS, Conditions, revision_moved, source_revision
from transfer import make_random_file, sha256_file

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "_s3_client.py"
MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024 * MIB
TITLE = "S3 transfer benchmark: modelreg's S3 store and plain S3 clients"
REGION = "us-east-1"
CLIENTS = ("boto3", "obstore", "embedded", "remote")
LABELS = {
    "boto3": "boto3 upload_file / get_object",
    "obstore": "obstore put / get",
    "embedded": "modelreg embedded, s3:// store",
    "remote": "modelreg serve, presigned",
}


@dataclass
class ClientRun:
    """One client's round trips: seconds each way, peak RSS of each process."""

    name: str
    upload: list[float] = field(default_factory=list)
    download: list[float] = field(default_factory=list)
    peak_kib: list[int] = field(default_factory=list)
    conditions: Conditions | None = None

    def mbps(self, way: str, size: int, pick: Callable[[Sequence[float]], float]) -> float:
        return size / pick(self.upload if way == "upload" else self.download) / MB


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print its tables and, with --write, record them."""
    args = parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    need = args.size * 3
    if shutil.disk_usage(args.data_dir).free < need:
        raise SystemExit(f"need {need / GIB:.1f} GiB free under {args.data_dir}")
    start = source_revision()
    facts = [*describe(), *software()]
    with tempfile.TemporaryDirectory(dir=args.data_dir, prefix="s3-transfer-") as tmp:
        work = Path(tmp)
        source = work / "model.bin"
        make_random_file(source, args.size)
        sha = [timed(lambda: sha256_file(source)) for _ in range(args.repeat)]
        with s3_server(work) as s3:
            runs, serve_memory = measure(s3, work, source, args)
            s3_memory = s3.memory()
        facts.append(("File system", file_system(work)))
    facts.append(("Settings", settings(args)))
    tables = [rate_table(args.size, sha, runs), memory_table(runs, serve_memory, s3_memory)]
    machine = Table("Machine during each client's runs", CONDITIONS_HEADERS)
    machine.rows += [run.conditions.row(LABELS[run.name]) for run in runs if run.conditions]
    tables.append(machine)
    notes = verdicts(args.size, runs) + NOTES + revision_moved(start)
    print(render(tables, notes))
    if args.write:
        path = write_results("s3_transfer", TITLE, facts, tables, notes)
        print(f"wrote {path.relative_to(HERE.parent)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2 * GIB, help="file size in bytes")
    parser.add_argument("--repeat", type=int, default=3, help="round trips per client")
    parser.add_argument("--quick", action="store_true", help="200 MB, 2 round trips")
    parser.add_argument(
        "--clients", default=",".join(CLIENTS), help=f"comma-separated subset of {CLIENTS}"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=HERE / ".data", help="where test files are made"
    )
    parser.add_argument("--write", action="store_true", help="write bench/results/s3_transfer.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.repeat = 200 * MB, 2
    args.clients = [c for c in args.clients.split(",") if c]
    unknown = set(args.clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown clients {sorted(unknown)}")
    return args


def software() -> list[tuple[str, str]]:
    versions = _servers.package_versions(
        sys.executable, ["boto3", "botocore", "obstore", "moto", "uvicorn"]
    )
    return [
        ("modelreg checkout", source_revision()),
        ("Libraries", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]


def settings(args: argparse.Namespace) -> str:
    return (
        f"one file of {size_label(args.size)} of random bytes, {args.repeat} round trips per "
        "client, each in a fresh process; S3 server: moto's standalone server on loopback, "
        "objects in its memory; modelreg serve with its defaults over SQLite and the bucket."
    )


def size_label(size: int) -> str:
    return f"{size // GIB} GiB" if size % GIB == 0 else f"{size / MB:,.0f} MB"


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def s3_server(work: Path) -> Any:
    """moto's server on a free port, in a session of its own."""
    port = _servers.free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _servers.running(
        "moto server",
        argv,
        env=_servers.base_env(),
        port=port,
        ready_path="/moto-api/",
        log=work / "moto.log",
    )


def measure(
    s3: _servers.Server, work: Path, source: Path, args: argparse.Namespace
) -> tuple[list[ClientRun], _servers.Memory | None]:
    """Every client's round trips; the peak memory of ``modelreg serve``."""
    env = {**_servers.base_env(), **aws_env(s3.url)}
    s3_client = boto3.client(
        "s3",
        endpoint_url=s3.url,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench-secret",
    )
    runs: list[ClientRun] = []
    serve_memory = None
    for name in args.clients:
        bucket = f"bench-{name}"
        s3_client.create_bucket(Bucket=bucket)
        base: dict[str, Any] = {"file": str(source), "bucket": bucket, "key": "model.bin"}
        if name == "embedded":
            base.update(database=f"sqlite:///{work / 'embedded.db'}", artifacts=f"s3://{bucket}/r")
        run = ClientRun(name)
        quiet_wait = _servers.wait_machine_quiet()
        if name == "remote":
            port = _servers.free_port()
            serve_env = {
                **env,
                "MODELREG_URI": f"sqlite:///{work / 'serve.db'}",
                "MODELREG_ARTIFACTS": f"s3://{bucket}/r",
            }
            argv = [sys.executable, "-m", "modelreg.cli", "serve", "--host", "127.0.0.1"]
            argv += ["--port", str(port)]
            context = _servers.running(
                "modelreg serve",
                argv,
                env=serve_env,
                port=port,
                ready_path="/readyz",
                log=work / "serve.log",
            )
            with context as serve:
                before = _servers.snapshot(serve)
                base["url"] = serve.url
                round_trips(run, env, base, work, source, s3_client, bucket, args.repeat)
                run.conditions = Conditions(quiet_wait, before, _servers.snapshot(serve))
                serve_memory = serve.memory()
        else:
            before = _servers.snapshot(s3)
            round_trips(run, env, base, work, source, s3_client, bucket, args.repeat)
            run.conditions = Conditions(quiet_wait, before, _servers.snapshot(s3))
        runs.append(run)
        print(
            f"{LABELS[name]}: up {run.mbps('upload', args.size, best):,.0f} "
            f"down {run.mbps('download', args.size, best):,.0f} MB/s",
            file=sys.stderr,
            flush=True,
        )
    return runs, serve_memory


def round_trips(
    run: ClientRun,
    env: dict[str, str],
    base: dict[str, Any],
    work: Path,
    source: Path,
    s3_client: Any,
    bucket: str,
    repeat: int,
) -> None:
    for attempt in range(repeat):
        # New bytes every time, so that modelreg never finds the blob already stored.
        with open(source, "r+b") as out:
            out.write(os.urandom(16))
        dest = work / "download"
        dest.mkdir()
        log = work / f"client-{run.name}.log"
        with open(log, "ab") as err:
            child = subprocess.run(
                [sys.executable, str(CLIENT), run.name, json.dumps({**base, "dest": str(dest)})],
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                check=False,
            )
        if child.returncode != 0:
            raise RuntimeError(f"{run.name} client failed:\n{_servers.tail(log)}")
        result = json.loads(child.stdout.splitlines()[-1])
        if sha256_file(dest / source.name) != sha256_file(source):
            raise RuntimeError(f"{run.name} round trip {attempt + 1} changed the bytes")
        run.upload.append(float(result["upload"]))
        run.download.append(float(result["download"]))
        run.peak_kib.append(int(result["peak_kib"]))
        shutil.rmtree(dest)
        empty(s3_client, bucket)  # the S3 server keeps objects in memory


def empty(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


def rate_table(size: int, sha: list[float], runs: Sequence[ClientRun]) -> Table:
    table = Table(
        f"One {size_label(size)} file (MB/s; x boto3 = modelreg / boto3, best runs)",
        [
            "client",
            "upload best",
            "upload median",
            "download best",
            "download median",
            "x boto3 up",
            "x boto3 down",
        ],
    )
    table.rows.append(
        [
            "SHA-256, 1 thread (bound for modelreg)",
            f"{size / best(sha) / MB:,.0f}",
            f"{size / median(sha) / MB:,.0f}",
            "-",
            "-",
            "-",
            "-",
        ]
    )
    plain = next((r for r in runs if r.name == "boto3"), None)
    for run in runs:
        up, down = run.mbps("upload", size, best), run.mbps("download", size, best)
        ratio_up = f"{up / plain.mbps('upload', size, best):.2f}" if plain else "-"
        ratio_down = f"{down / plain.mbps('download', size, best):.2f}" if plain else "-"
        table.rows.append(
            [
                LABELS[run.name],
                f"{up:,.0f}",
                f"{run.mbps('upload', size, median):,.0f}",
                f"{down:,.0f}",
                f"{run.mbps('download', size, median):,.0f}",
                ratio_up,
                ratio_down,
            ]
        )
    return table


def memory_table(
    runs: Sequence[ClientRun], serve: _servers.Memory | None, s3: _servers.Memory
) -> Table:
    table = Table("Memory (peak RSS, VmHWM, MB)", ["process", "peak MB"])
    for run in runs:
        table.rows.append([f"client: {LABELS[run.name]}", f"{max(run.peak_kib) * 1024 / MB:.0f}"])
    if serve is not None:
        table.rows.append(["modelreg serve (largest process)", mb(serve.largest_peak_kib)])
    table.rows.append(["moto S3 server (objects in memory)", mb(s3.largest_peak_kib)])
    return table


def mb(kib: int) -> str:
    return f"{kib * 1024 / MB:.0f}"


def verdicts(size: int, runs: Sequence[ClientRun]) -> list[str]:
    by_name = {run.name: run for run in runs}
    lines = library_choice(size, by_name)
    plain = by_name.get("boto3")
    for name in ("embedded", "remote"):
        ours = by_name.get(name)
        if ours is None or plain is None:
            continue
        for way in ("upload", "download"):
            ratio = ours.mbps(way, size, best) / plain.mbps(way, size, best)
            lines.append(f"{LABELS[name]}, {way}: {ratio:.2f}x plain boto3 in the same run.")
    return lines


def library_choice(size: int, by_name: dict[str, ClientRun]) -> list[str]:
    """The numbers the S3 library was chosen on, and the choice."""
    boto, obstore, ours = by_name.get("boto3"), by_name.get("obstore"), by_name.get("embedded")
    if boto is None or obstore is None or ours is None:
        return []

    def ratio(run: ClientRun, way: str) -> str:
        return f"{run.mbps(way, size, best) / boto.mbps(way, size, best):.2f}x"

    return [
        f"Library: against the same server in this run, obstore moved the file "
        f"{ratio(obstore, 'upload')} boto3's rate up and {ratio(obstore, 'download')} down; "
        f"modelreg's S3 store, built on boto3, {ratio(ours, 'upload')} and "
        f"{ratio(ours, 'download')}, hashing every byte. modelreg uses boto3: obstore's "
        "edge is in reading responses, which modelreg's reads bypass (a presigned GET over "
        "http.client, straight into its buffers), and boto3 brings presigned URLs, the "
        "standard AWS configuration chain (profiles, SSO, instance roles, "
        "AWS_ENDPOINT_URL), standard-mode retries and typed stubs.",
    ]


NOTES = [
    "MB = 10^6 bytes. The file is hot in the page cache; downloads go to the page cache.",
    "modelreg hashes every byte with SHA-256 on one core: before uploading (a bucket "
    "store hashes first, to skip blobs it already holds) and while downloading; the plain "
    "clients verify nothing (boto3 runs with CRC32 off, as modelreg's client does; "
    "obstore with its defaults).",
    "Through modelreg serve the client PUTs the file to a presigned URL (one request, "
    "sendfile) and then asks the server to finish the upload: the server reads it back "
    "from the bucket, hashes it and copies it under its digest key. That re-read and the "
    "copy are part of the upload time. Downloads go straight from the bucket.",
    "The S3 server is moto (Python): it bounds every client's upload rate here, and keeps "
    "objects in memory, so its peak reflects the file size, not a client's behaviour.",
]


if __name__ == "__main__":
    main()
