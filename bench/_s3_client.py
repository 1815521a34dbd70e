"""One upload and one download of a file through an S3 server, in a fresh process.

    python bench/_s3_client.py SCENARIO JSON-ARGUMENTS

Scenarios: ``boto3`` (``upload_file`` with boto3's default transfer settings, one
streamed ``get_object``; CRC32 checksums off, as in modelreg's client),
``obstore`` (``obstore.put``/``obstore.get`` with its defaults), ``embedded``
(``modelreg.connect(db, artifacts="s3://…")``: register, then pull) and ``remote``
(``modelreg.connect(URL)`` against ``modelreg serve`` over the bucket: register, then
pull). The AWS settings come from the environment. Prints one JSON line: seconds up,
seconds down, and the process's peak RSS (VmHWM, KiB).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _child import peak_kib

MODEL = "bench-s3"
CHUNK = 8 * 1024 * 1024


def main(argv: list[str]) -> None:
    """Run one scenario and print its JSON result."""
    scenario, raw = argv
    args: dict[str, Any] = json.loads(raw)
    src, dest = Path(args["file"]), Path(args["dest"])
    run = {"boto3": boto3_client, "obstore": obstore_client}.get(scenario, registry)
    up, down = run(scenario, args, src, dest)
    print(json.dumps({"upload": up, "download": down, "peak_kib": peak_kib()}))


def boto3_client(
    _scenario: str, args: dict[str, Any], src: Path, dest: Path
) -> tuple[float, float]:
    import boto3
    import botocore.config

    # The settings modelreg's own client uses: no CRC32 on top of what is sent (modelreg
    # checks SHA-256 instead), so that both sides do the same work on the wire.
    config = botocore.config.Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = boto3.client("s3", config=config)
    start = time.perf_counter()
    client.upload_file(str(src), args["bucket"], args["key"])
    up = time.perf_counter() - start
    start = time.perf_counter()
    # One streamed GET, as modelreg and obstore read: download_file's 8 MiB ranged GETs
    # each cost moto a pass over the whole object (minutes per GiB), which would
    # measure moto, not the client.
    body: Any = client.get_object(Bucket=args["bucket"], Key=args["key"])["Body"]
    buffer = bytearray(CHUNK)
    with open(dest / src.name, "wb", buffering=0) as out:
        while n := body.readinto(buffer):
            out.write(memoryview(buffer)[:n])
    return up, time.perf_counter() - start


def obstore_client(
    _scenario: str, args: dict[str, Any], src: Path, dest: Path
) -> tuple[float, float]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        args["bucket"],
        endpoint=os.environ["AWS_ENDPOINT_URL"],
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ["AWS_REGION"],
        client_options={"allow_http": True},
    )
    start = time.perf_counter()
    with open(src, "rb") as body:
        obstore.put(store, args["key"], body)
    up = time.perf_counter() - start
    start = time.perf_counter()
    with open(dest / src.name, "wb") as out:
        for chunk in obstore.get(store, args["key"]).stream(CHUNK):
            out.write(chunk)
    return up, time.perf_counter() - start


def registry(scenario: str, args: dict[str, Any], src: Path, dest: Path) -> tuple[float, float]:
    import modelreg

    if scenario == "embedded":
        reg = modelreg.connect(args["database"], artifacts=args["artifacts"])
    else:
        reg = modelreg.connect(args["url"])
    with reg:
        start = time.perf_counter()
        reg.register(MODEL, src)
        up = time.perf_counter() - start
        start = time.perf_counter()
        reg.pull(f"{MODEL}@latest", dest)
        return up, time.perf_counter() - start


if __name__ == "__main__":
    main(sys.argv[1:])
